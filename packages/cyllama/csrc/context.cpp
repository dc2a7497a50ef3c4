// Inference context: batched decoding into the KV cache, logits, greedy choice, timings.
#include "common.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <cmath>

namespace cyllama {

struct Context {
    nb::object model_ref;  // keeps the Python Model (and so the llama_model) alive
    const Model * model = nullptr;
    llama_context * ptr = nullptr;
    // A persistent CPU thread pool (threads poll between graphs instead of being created for
    // every token); made through the CPU backend's registry, as the CPU code is a module.
    ggml_threadpool_t threadpool = nullptr;
    ggml_threadpool_t threadpool_batch = nullptr;  // only when n_threads_batch differs
    decltype(&ggml_threadpool_free) threadpool_free = nullptr;
    llama_batch batch{};
    int32_t n_batch = 0;
    int32_t n_past = 0;
    bool has_logits = false;

    Context(nb::object model_obj, uint32_t n_ctx, uint32_t n_batch_, uint32_t n_ubatch,
            int32_t n_threads, int32_t n_threads_batch)
        : model_ref(model_obj), model(nb::cast<const Model *>(model_obj)) {
        llama_context_params p = llama_context_default_params();
        p.n_ctx = n_ctx;
        p.n_batch = n_batch_;
        p.n_ubatch = n_ubatch ? n_ubatch : std::min<uint32_t>(n_batch_, p.n_ubatch);
        p.n_threads = n_threads;
        p.n_threads_batch = n_threads_batch;
        p.no_perf = false;
        family::mark_log();
        {
            nb::gil_scoped_release release;
            ptr = llama_init_from_model(model->ptr, p);
        }
        if (!ptr) family::raise(family::error_kind::compute, "failed to create a llama context");
        attach_threadpools(n_threads, n_threads_batch);
        n_batch = (int32_t) llama_n_batch(ptr);
        batch = llama_batch_init(n_batch, 0, 1);
    }
    ~Context() {
        llama_batch_free(batch);
        if (ptr) llama_free(ptr);
        free_threadpools();
    }

    void free_threadpools() {
        if (threadpool) threadpool_free(threadpool);
        if (threadpool_batch) threadpool_free(threadpool_batch);
        threadpool = threadpool_batch = nullptr;
    }

    void attach_threadpools(int32_t n_threads, int32_t n_threads_batch) {
        ggml_backend_reg_t cpu = ggml_backend_reg_by_name("CPU");
        if (!cpu) return;  // no CPU backend: llama.cpp's own default applies
        auto make = (decltype(&ggml_threadpool_new)) ggml_backend_reg_get_proc_address(
            cpu, "ggml_threadpool_new");
        threadpool_free = (decltype(&ggml_threadpool_free)) ggml_backend_reg_get_proc_address(
            cpu, "ggml_threadpool_free");
        if (!make || !threadpool_free) return;
        ggml_threadpool_params tpp = ggml_threadpool_params_default(n_threads);
        threadpool = make(&tpp);
        if (n_threads_batch != n_threads) {
            ggml_threadpool_params tpp_batch = ggml_threadpool_params_default(n_threads_batch);
            threadpool_batch = make(&tpp_batch);
        }
        if (threadpool) llama_attach_threadpool(ptr, threadpool, threadpool_batch);
    }
    Context(const Context &) = delete;
    Context & operator=(const Context &) = delete;

    void decode(const std::vector<llama_token> & tokens) {
        if (tokens.empty()) throw nb::value_error("decode() needs at least one token");
        const int32_t n_ctx = (int32_t) llama_n_ctx(ptr);
        const int32_t n_vocab = llama_vocab_n_tokens(model->vocab());
        if (n_past + (int64_t) tokens.size() > n_ctx) {
            throw nb::value_error(("context overflow: " + std::to_string(n_past) + " + " +
                                   std::to_string(tokens.size()) + " tokens exceed n_ctx " +
                                   std::to_string(n_ctx)).c_str());
        }
        for (llama_token t : tokens) {
            if (t < 0 || t >= n_vocab) {
                throw nb::value_error(("token id " + std::to_string(t) + " is out of range [0, " +
                                       std::to_string(n_vocab) + ")").c_str());
            }
        }
        family::mark_log();
        int32_t rc = 0;
        {
            nb::gil_scoped_release release;
            for (size_t start = 0; start < tokens.size() && rc == 0; start += (size_t) n_batch) {
                const size_t n = std::min(tokens.size() - start, (size_t) n_batch);
                batch.n_tokens = (int32_t) n;
                for (size_t i = 0; i < n; ++i) {
                    batch.token[i] = tokens[start + i];
                    batch.pos[i] = n_past + (llama_pos) i;
                    batch.n_seq_id[i] = 1;
                    batch.seq_id[i][0] = 0;
                    batch.logits[i] = (start + i + 1 == tokens.size());
                }
                rc = llama_decode(ptr, batch);
                if (rc == 0) n_past += (int32_t) n;
            }
        }
        has_logits = (rc == 0);
        if (rc != 0) {
            family::raise(family::error_kind::compute,
                          "llama_decode failed with code " + std::to_string(rc));
        }
    }

    const float * last_logits() const {
        if (!has_logits) throw nb::value_error("no logits: decode() tokens first");
        return llama_get_logits_ith(ptr, -1);
    }

    llama_token greedy() const {
        const float * l = last_logits();
        const int32_t n = llama_vocab_n_tokens(model->vocab());
        // Two passes the compiler vectorises (8 independent maxima, then a search for the
        // first index holding the max): ~5x faster than std::max_element on a 262k vocabulary.
        float lanes[8];
        std::fill(lanes, lanes + 8, -INFINITY);
        int32_t i = 0;
        for (; i + 8 <= n; i += 8) {
            for (int j = 0; j < 8; ++j) lanes[j] = std::max(lanes[j], l[i + j]);
        }
        float best = *std::max_element(lanes, lanes + 8);
        for (; i < n; ++i) best = std::max(best, l[i]);
        return (llama_token) (std::find(l, l + n, best) - l);
    }

    void truncate(int32_t n) {
        if (n < 0 || n > n_past) {
            throw nb::value_error(("cannot truncate to " + std::to_string(n) + " tokens: the cache holds " +
                                   std::to_string(n_past)).c_str());
        }
        llama_memory_seq_rm(llama_get_memory(ptr), -1, n, -1);
        n_past = n;
        has_logits = false;
    }
};

void bind_context(nb::module_ & m) {
    nb::class_<Context>(m, "Context", "A llama.cpp inference context (KV cache) over a Model.")
        .def(nb::init<nb::object, uint32_t, uint32_t, uint32_t, int32_t, int32_t>(), "model"_a,
             "n_ctx"_a, "n_batch"_a, "n_ubatch"_a, "n_threads"_a, "n_threads_batch"_a)
        .def("decode", &Context::decode, "tokens"_a,
             "Evaluate tokens after the cached ones, in batches of n_batch (GIL released).")
        .def("logits",
             [](const Context & s) {
                 const int32_t n = llama_vocab_n_tokens(s.model->vocab());
                 const float * logits = s.last_logits();
                 float * copy = new float[(size_t) n];
                 std::copy(logits, logits + n, copy);
                 nb::capsule owner(copy, [](void * p) noexcept { delete[] (float *) p; });
                 return nb::ndarray<nb::numpy, float, nb::ndim<1>>(copy, {(size_t) n}, owner);
             },
             "A copy of the logits after the last decoded token.")
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
                 return out;
             },
             "llama.cpp's timings: prompt and generation time and token counts.")
        .def("perf_reset", [](Context & s) { llama_perf_context_reset(s.ptr); });
}

}  // namespace cyllama
