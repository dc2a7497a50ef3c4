// Inference context: batched decoding into the KV cache, logits, greedy choice, timings.
#include "context.h"

#include <nanobind/stl/pair.h>
#include <nanobind/stl/tuple.h>

namespace cyllama {

void bind_context(nb::module_ & m) {
    nb::class_<Context>(m, "Context", "A llama.cpp inference context (KV cache) over a Model.")
        .def(nb::init<nb::object, uint32_t, uint32_t, uint32_t, int32_t, int32_t, uint32_t>(),
             "model"_a, "n_ctx"_a, "n_batch"_a, "n_ubatch"_a, "n_threads"_a, "n_threads_batch"_a,
             "n_seq_max"_a = 1,
             "n_seq_max > 1: that many sequences share one unified KV cache of n_ctx cells.")
        .def("decode", &Context::decode, "tokens"_a,
             "Evaluate tokens after the cached ones, in batches of n_batch (GIL released).")
        .def("decode_seqs",
             [](Context & s,
                const std::vector<std::tuple<int32_t, std::vector<llama_token>, int32_t, bool>> & items) {
                 std::vector<Context::chunk> chunks;
                 chunks.reserve(items.size());
                 for (const auto & [seq, tokens, pos, logits] : items) chunks.push_back({seq, tokens, pos, logits});
                 return s.decode_seqs(chunks);
             },
             "chunks"_a,
             "One decode of (seq_id, tokens, first position, logits wanted) chunks of several "
             "sequences, n_batch tokens at most (GIL released). Returns each chunk's logits row "
             "(-1: none), for Sampler.sample() and logprobs().")
        .def("seq_rm", &Context::seq_rm, "seq_id"_a, "p0"_a, "p1"_a = -1,
             "Drop positions [p0, p1) of a sequence from the cache (-1: all sequences; p1 -1: "
             "to the end).")
        .def_ro("n_seq_max", &Context::n_seq_max, "How many sequences the cache holds.")
        .def_prop_ro("n_ctx_seq", [](const Context & s) { return llama_n_ctx_seq(s.ptr); },
                     "The most positions one sequence can hold.")
        .def("logits",
             [](const Context & s, int32_t row) {
                 const int32_t n = llama_vocab_n_tokens(s.model->vocab());
                 const float * logits = s.last_logits(row);
                 float * copy = new float[(size_t) n];
                 std::copy(logits, logits + n, copy);
                 nb::capsule owner(copy, [](void * p) noexcept { delete[] (float *) p; });
                 return nb::ndarray<nb::numpy, float, nb::ndim<1>>(copy, {(size_t) n}, owner);
             },
             "row"_a = -1,
             "A copy of the logits after the last decoded token (or of a decode_seqs() row).")
        .def("greedy", &Context::greedy, "Id of the most likely next token (argmax of the logits).")
        .def("truncate", &Context::truncate, "n_tokens"_a,
             "Drop cached tokens from position n_tokens on.")
        .def_ro("n_past", &Context::n_past, "Number of tokens in the cache.")
        .def_prop_ro("n_ctx", [](const Context & s) { return llama_n_ctx(s.ptr); })
        .def_prop_ro("n_batch", [](const Context & s) { return s.n_batch; })
        .def("set_threads",
             [](Context & s, int32_t n, int32_t nb_) {
                 llama_detach_threadpool(s.ptr);
                 s.free_threadpools();
                 llama_set_n_threads(s.ptr, n, nb_);
                 s.attach_threadpools(n, nb_);
             },
             "n_threads"_a, "n_threads_batch"_a)
        .def("perf",
             [](const Context & s) {
                 llama_perf_context_data d = llama_perf_context(s.ptr);
                 nb::typed<nb::dict, nb::str, nb::any> out;
                 out["t_load_ms"] = d.t_load_ms;
                 out["t_p_eval_ms"] = d.t_p_eval_ms;
                 out["t_eval_ms"] = d.t_eval_ms;
                 out["n_p_eval"] = d.n_p_eval;
                 out["n_eval"] = d.n_eval;
                 out["n_reused"] = d.n_reused;
                 return out;
             },
             "llama.cpp's timings: prompt and generation time and token counts.")
        .def("perf_reset",
             [](Context & s) {
                 llama_perf_context_reset(s.ptr);
                 s.n_decode_calls = 0;
                 s.decode_seconds = 0.0;
             })
        .def("decode_stats",
             [](const Context & s) { return std::make_pair(s.n_decode_calls, s.decode_seconds); },
             "(llama_decode calls, seconds inside them) since perf_reset().")
        .def("set_loras",
             [](Context & s, const std::vector<nb::object> & adapters, std::vector<float> scales) {
                 if (adapters.size() != scales.size()) throw nb::value_error("one scale per adapter");
                 std::vector<llama_adapter_lora *> ptrs;
                 for (const nb::object & a : adapters) {
                     const LoraAdapter * ad = nb::cast<const LoraAdapter *>(a);
                     if (nb::cast<const Model *>(ad->model_ref) != s.model)
                         throw nb::value_error("the LoRA adapter was loaded for another model");
                     ptrs.push_back(ad->ptr);
                 }
                 llama_set_adapters_lora(s.ptr, ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(),
                                         scales.empty() ? nullptr : scales.data());
                 s.loras = adapters;
             },
             "adapters"_a, "scales"_a, "Replace the context's LoRA adapters (empty: none).")
        .def("state_get",
             [](Context & s) {
                 std::string buf(llama_state_get_size(s.ptr), '\0');
                 const size_t n = family::call(family::error_kind::compute, "cannot read the state", [&] {
                     return llama_state_get_data(s.ptr, (uint8_t *) buf.data(), buf.size());
                 });
                 return nb::bytes(buf.data(), n);
             },
             "The context's state (KV cache, logits) as bytes.")
        .def("state_set",
             [](Context & s, nb::bytes data, int32_t n_past) {
                 s.n_past = 0;  // until the state is in: a failed restore leaves no cache
                 s.has_logits = false;
                 family::call(
                     family::error_kind::value,
                     "the state does not fit this context (other model or n_ctx?)",
                     [&] {
                         return llama_state_set_data(s.ptr, (const uint8_t *) data.c_str(),
                                                     data.size());
                     },
                     [](size_t n) { return n == 0; });
                 s.n_past = n_past;
             },
             "data"_a, "n_past"_a, "Restore a state from state_get(); n_past: its token count.")
        .def("state_save_file",
             [](Context & s, const std::string & path, const std::vector<llama_token> & tokens) {
                 family::call(family::error_kind::compute, "cannot save state to " + path, [&] {
                     return llama_state_save_file(s.ptr, path.c_str(), tokens.data(), tokens.size());
                 });
             },
             "path"_a, "tokens"_a, "Save the state and its tokens to a llama.cpp session file.")
        .def("state_load_file",
             [](Context & s, const std::string & path) {
                 std::vector<llama_token> tokens(llama_n_ctx(s.ptr));
                 size_t count = 0;
                 s.n_past = 0;  // until the state is in: a failed load leaves no cache
                 s.has_logits = false;
                 family::call(family::error_kind::model_load, "cannot load state from " + path, [&] {
                     return llama_state_load_file(s.ptr, path.c_str(), tokens.data(),
                                                  tokens.size(), &count);
                 });
                 tokens.resize(count);
                 s.n_past = (int32_t) count;
                 return tokens;
             },
             "path"_a, "Load a session file; returns its tokens.");
}

}  // namespace cyllama
