// Model loading, vocabulary (tokenize / detokenize), metadata and layer placement.
#include "common.h"

#include "llama-model.h"  // llama.cpp's internal model class: where each layer was placed

#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <algorithm>
#include <cstdint>
#include <utility>

namespace cyllama {

Model::Model(const std::string & path_, int n_gpu_layers, bool use_mmap, bool vocab_only,
             const std::optional<std::vector<std::string>> & devices, bool repack)
    : path(path_) {
    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = n_gpu_layers;
    params.use_extra_bufts = repack;  // the CPU's repacked weight layouts (AMX, interleaved)
    // The devices to place layers on, in order (NULL-terminated; an empty list: this CPU
    // only); None: llama.cpp's default (every GPU, and every RPC server registered in the
    // process).
    std::vector<ggml_backend_dev_t> devs;
    for (const auto & name : devices.value_or(std::vector<std::string>())) {
        ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
        if (!dev) throw nb::value_error(("no ggml device named " + name).c_str());
        devs.push_back(dev);
    }
    devs.push_back(nullptr);
    if (devices) params.devices = devs.data();
    params.load_mode = use_mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    params.vocab_only = vocab_only;
    ptr = family::call(family::error_kind::model_load, "failed to load model from " + path,
                       [&] { return llama_model_load_from_file(path.c_str(), params); });
}

Model::~Model() {
    if (ptr) llama_model_free(ptr);
}

LoraAdapter::LoraAdapter(nb::object model_obj, const std::string & path_)
    : model_ref(model_obj), path(path_) {
    const Model * model = nb::cast<const Model *>(model_obj);
    ptr = family::call(family::error_kind::model_load, "failed to load LoRA adapter " + path,
                       [&] { return llama_adapter_lora_init(model->ptr, path.c_str()); });
}

// Renders messages with one of llama.cpp's built-in chat formats, chosen by name ("chatml",
// "gemma", ...) or detected from a Jinja template's text. None when neither matches.
static nb::object apply_chat_template(const std::string & tmpl,
                                      const std::vector<std::pair<std::string, std::string>> & msgs,
                                      bool add_assistant) {
    std::vector<llama_chat_message> chat;
    size_t total = 0;
    for (const auto & [role, content] : msgs) {
        chat.push_back({role.c_str(), content.c_str()});
        total += role.size() + content.size();
    }
    std::string buf(2 * total + 256, '\0');
    int32_t n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_assistant,
                                          buf.data(), (int32_t) buf.size());
    if (n < 0) return nb::none();
    if ((size_t) n > buf.size()) {
        buf.resize((size_t) n);
        n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_assistant,
                                      buf.data(), (int32_t) buf.size());
    }
    return nb::str(buf.data(), (size_t) n);
}

static std::vector<std::string> builtin_chat_templates() {
    std::vector<const char *> names((size_t) llama_chat_builtin_templates(nullptr, 0));
    llama_chat_builtin_templates(names.data(), names.size());
    return {names.begin(), names.end()};
}

static std::vector<llama_token> tokenize(const Model & self, const std::string & text,
                                         bool add_special, bool parse_special) {
    const llama_vocab * vocab = self.vocab();
    std::vector<llama_token> out(text.size() + 2);
    int32_t n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(),
                               (int32_t) out.size(), add_special, parse_special);
    if (n == INT32_MIN) throw nb::value_error("text is too long to tokenize");
    if (n < 0) {
        out.resize((size_t) -n);
        n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(),
                           (int32_t) out.size(), add_special, parse_special);
    }
    out.resize((size_t) n);
    return out;
}

static void check_tokens(const Model & self, const std::vector<llama_token> & tokens) {
    const int32_t n_vocab = llama_vocab_n_tokens(self.vocab());
    for (llama_token t : tokens) {
        if (t < 0 || t >= n_vocab) {
            throw nb::value_error(("token id " + std::to_string(t) + " is out of range [0, " +
                                   std::to_string(n_vocab) + ")").c_str());
        }
    }
}

static nb::bytes detokenize(const Model & self, const std::vector<llama_token> & tokens,
                            bool remove_special, bool unparse_special) {
    check_tokens(self, tokens);
    std::string out(tokens.size() * 8 + 16, '\0');
    int32_t n = llama_detokenize(self.vocab(), tokens.data(), (int32_t) tokens.size(), out.data(),
                                 (int32_t) out.size(), remove_special, unparse_special);
    if (n < 0) {
        out.resize((size_t) -n);
        n = llama_detokenize(self.vocab(), tokens.data(), (int32_t) tokens.size(), out.data(),
                             (int32_t) out.size(), remove_special, unparse_special);
    }
    return nb::bytes(out.data(), (size_t) n);
}

static nb::bytes token_to_piece(const Model & self, llama_token token, bool special) {
    check_tokens(self, {token});
    char buf[256];
    int32_t n = llama_token_to_piece(self.vocab(), token, buf, sizeof(buf), 0, special);
    if (n >= 0) return nb::bytes(buf, (size_t) n);
    std::string big((size_t) -n, '\0');
    n = llama_token_to_piece(self.vocab(), token, big.data(), (int32_t) big.size(), 0, special);
    return nb::bytes(big.data(), (size_t) n);
}

// GGUF metadata as a dict of str. Strings are meant to be UTF-8; bytes that are not become
// U+FFFD instead of a UnicodeDecodeError (a corrupt or foreign file still shows its metadata).
template <typename KeyFn, typename ValFn>
static nb::typed<nb::dict, nb::str, nb::str> meta_dict(int32_t count, KeyFn key_at, ValFn val_at) {
    auto text = [](const std::vector<char> & buf, int32_t n) {
        PyObject * o = PyUnicode_DecodeUTF8(buf.data(), (Py_ssize_t) n, "replace");
        if (!o) throw nb::python_error();
        return nb::steal<nb::str>(o);
    };
    nb::typed<nb::dict, nb::str, nb::str> out;
    std::vector<char> key(512), val(4096);
    auto get = [](auto && fn, int32_t i, std::vector<char> & buf) {
        int32_t n = fn(i, buf.data(), buf.size());
        if (n >= (int32_t) buf.size()) {  // too long for the buffer: n is the length it needs
            buf.resize((size_t) n + 1);
            n = fn(i, buf.data(), buf.size());
        }
        return n;
    };
    for (int32_t i = 0; i < count; ++i) {
        const int32_t k = get(key_at, i, key);
        const int32_t v = get(val_at, i, val);
        if (k >= 0 && v >= 0) out[text(key, k)] = text(val, v);
    }
    return out;
}

static nb::typed<nb::dict, nb::str, nb::str> metadata(const Model & self) {
    return meta_dict(
        llama_model_meta_count(self.ptr),
        [&](int32_t i, char * buf, size_t n) { return llama_model_meta_key_by_index(self.ptr, i, buf, n); },
        [&](int32_t i, char * buf, size_t n) { return llama_model_meta_val_str_by_index(self.ptr, i, buf, n); });
}

void bind_model(nb::module_ & m) {
    m.def("apply_chat_template", &apply_chat_template, "template"_a, "messages"_a,
          "add_assistant"_a,
          "Render (role, content) messages with a built-in llama.cpp chat format (by name, or "
          "detected from a Jinja template); None if the template is not one of them.");
    m.def("builtin_chat_templates", &builtin_chat_templates,
          "Names of llama.cpp's built-in chat formats.");
    nb::class_<LoraAdapter>(m, "LoraAdapter", "A LoRA adapter loaded for a model.")
        .def(nb::init<nb::object, const std::string &>(), "model"_a, "path"_a)
        .def_ro("path", &LoraAdapter::path)
        .def("metadata",
             [](const LoraAdapter & s) {
                 return meta_dict(
                     llama_adapter_meta_count(s.ptr),
                     [&](int32_t i, char * buf, size_t n) { return llama_adapter_meta_key_by_index(s.ptr, i, buf, n); },
                     [&](int32_t i, char * buf, size_t n) {
                         return llama_adapter_meta_val_str_by_index(s.ptr, i, buf, n);
                     });
             },
             "The adapter's GGUF metadata as strings.");

    nb::class_<Model>(m, "Model", "A loaded llama.cpp model (weights and vocabulary).")
        .def(nb::init<const std::string &, int, bool, bool,
                      const std::optional<std::vector<std::string>> &, bool>(),
             "path"_a, "n_gpu_layers"_a = 0, "use_mmap"_a = true, "vocab_only"_a = false,
             "devices"_a = nb::none(), "repack"_a = true,
             "devices: the ggml devices to place layers on, in order ([]: this CPU only; "
             "None: llama.cpp's choice, every GPU and RPC server). repack: CPU layers may use "
             "repacked weight layouts (faster; other float rounding than plain kernels).")
        .def_ro("path", &Model::path)
        .def("tokenize", &tokenize, "text"_a, "add_special"_a = true, "parse_special"_a = false,
             "Token ids of UTF-8 text.")
        .def("detokenize", &detokenize, "tokens"_a, "remove_special"_a = false,
             "unparse_special"_a = false, "UTF-8 bytes of token ids (may end mid-character).")
        .def("token_to_piece", &token_to_piece, "token"_a, "special"_a = false)
        .def_prop_ro("n_vocab", [](const Model & s) { return llama_vocab_n_tokens(s.vocab()); })
        .def_prop_ro("bos", [](const Model & s) { return llama_vocab_bos(s.vocab()); })
        .def_prop_ro("eos", [](const Model & s) { return llama_vocab_eos(s.vocab()); })
        .def_prop_ro("add_bos", [](const Model & s) { return llama_vocab_get_add_bos(s.vocab()); })
        .def("is_eog", [](const Model & s, llama_token t) { return llama_vocab_is_eog(s.vocab(), t); },
             "token"_a, "Whether the token ends generation (EOS, EOT, ...).")
        .def_prop_ro("n_ctx_train", [](const Model & s) { return llama_model_n_ctx_train(s.ptr); })
        .def_prop_ro("n_layer", [](const Model & s) { return llama_model_n_layer(s.ptr); })
        .def_prop_ro("n_embd", [](const Model & s) { return llama_model_n_embd(s.ptr); })
        .def_prop_ro("n_params", [](const Model & s) { return llama_model_n_params(s.ptr); })
        .def_prop_ro("size", [](const Model & s) { return llama_model_size(s.ptr); })
        .def_prop_ro("description",
                     [](const Model & s) {
                         char buf[256];
                         int32_t n = llama_model_desc(s.ptr, buf, sizeof(buf));
                         return std::string(buf, n > 0 ? (size_t) n : 0);
                     })
        .def("metadata", &metadata, "GGUF metadata as a dict of strings.")
        .def("layer_devices",
             [](const Model & s) {
                 std::vector<std::string> out;
                 const int32_t n = llama_model_n_layer(s.ptr);
                 for (int32_t il = 0; il < n; ++il) {
                     ggml_backend_dev_t dev = s.ptr->dev_layer(il);
                     out.emplace_back(dev ? ggml_backend_dev_name(dev) : "?");
                 }
                 ggml_backend_dev_t out_dev = s.ptr->dev_output();
                 out.emplace_back(out_dev ? ggml_backend_dev_name(out_dev) : "?");
                 return out;
             },
             "Device name of each repeating layer, then of the output layer.")
        .def("kv_cache_bytes",
             [](const Model & s, uint32_t n_ctx, uint32_t n_seq_max, uint32_t n_ubatch) {
                 // What llama.cpp's KV cache will take for such a context (F16 K and V, as
                 // cyllama makes them): n_ctx cells in every layer that has a KV cache; a
                 // sliding-window layer keeps only its window per sequence plus one ubatch,
                 // unless the context keeps full SWA caches (llama.cpp's default, which
                 // cyllama keeps: it lets a cached prefix be reused). Recurrent layers keep a
                 // small state per sequence: not counted.
                 const llama_hparams & hp = s.ptr->hparams;
                 const bool swa_full = llama_context_default_params().swa_full;
                 const uint64_t swa = std::min<uint64_t>(
                     n_ctx, (uint64_t) hp.n_swa * n_seq_max + n_ubatch);
                 uint64_t bytes = 0;
                 for (uint32_t il = 0; il < hp.n_layer(); ++il) {
                     if (!hp.has_kv(il) || hp.is_recr(il)) {
                         continue;
                     }
                     const uint64_t cells = hp.is_swa(il) && !swa_full ? swa : n_ctx;
                     bytes += cells * 2 * ((uint64_t) hp.n_embd_k_gqa(il) + hp.n_embd_v_gqa(il));
                 }
                 return bytes;
             },
             "n_ctx"_a, "n_seq_max"_a = 1, "n_ubatch"_a = 512,
             "Bytes the KV cache of a context of n_ctx cells would take (an estimate made before "
             "allocating anything).")
        .def("chat_template",
             [](const Model & s, nb::object name) -> nb::object {
                 const char * t = llama_model_chat_template(
                     s.ptr, name.is_none() ? nullptr : nb::cast<std::string>(name).c_str());
                 return t ? nb::object(nb::str(t)) : nb::object(nb::none());
             },
             "name"_a = nb::none(), "The model's chat template from its metadata, or None.");
}

}  // namespace cyllama
