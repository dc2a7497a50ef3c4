// The inference context, shared by the context, sampler and embedding bindings.
#pragma once

#include "common.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace cyllama {

// Index of the first maximum of l[0..n): the greedy choice (defined in sampler.cpp).
int32_t argmax(const float * l, int32_t n);

struct Context {
    nb::object model_ref;  // keeps the Python Model (and so the llama_model) alive
    const Model * model = nullptr;
    llama_context * ptr = nullptr;
    // A persistent CPU thread pool (threads poll between graphs instead of being created for
    // every token); made through the CPU backend's registry, as the CPU code is a module.
    ggml_threadpool_t threadpool = nullptr;
    ggml_threadpool_t threadpool_batch = nullptr;  // only when n_threads_batch differs
    decltype(&ggml_threadpool_free) threadpool_free = nullptr;
    std::vector<nb::object> loras;  // the attached LoraAdapter objects (kept alive)
    llama_batch batch{};
    int32_t n_batch = 0;
    int32_t n_past = 0;
    bool has_logits = false;
    // Wall time inside llama_decode (which on the CPU includes the compute and the logits copy),
    // to tell the binding's own overhead from llama.cpp's and ggml's.
    int64_t n_decode_calls = 0;
    double decode_seconds = 0.0;

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
        ptr = family::call(family::error_kind::compute, "failed to create a llama context",
                           [&] { return llama_init_from_model(model->ptr, p); });
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
        has_logits = false;  // until every batch is in
        family::call(family::error_kind::compute, "llama_decode failed", [&] {
            int32_t rc = 0;
            const auto t0 = std::chrono::steady_clock::now();
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
                ++n_decode_calls;
            }
            decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            has_logits = (rc == 0);
            return rc;
        }, family::nonzero_status{});
    }

    const float * last_logits() const {
        if (!has_logits) throw nb::value_error("no logits: decode() tokens first");
        return llama_get_logits_ith(ptr, -1);
    }

    llama_token greedy() const {
        return argmax(last_logits(), llama_vocab_n_tokens(model->vocab()));
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

}  // namespace cyllama
