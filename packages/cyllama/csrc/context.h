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
    int32_t n_seq_max = 1;
    int32_t n_past = 0;
    bool has_logits = false;
    // After decode_seqs(): the batch rows that have logits (the last token of each sequence
    // chunk that asked for them); sampling then reads a row by its index.
    std::vector<int32_t> logit_rows;
    // Wall time inside llama_decode and the wait for its compute (and the logits copy),
    // to tell the binding's own overhead from llama.cpp's and ggml's.
    int64_t n_decode_calls = 0;
    double decode_seconds = 0.0;

    Context(nb::object model_obj, uint32_t n_ctx, uint32_t n_batch_, uint32_t n_ubatch,
            int32_t n_threads, int32_t n_threads_batch, uint32_t n_seq_max_ = 1)
        : model_ref(model_obj), model(nb::cast<const Model *>(model_obj)) {
        // (llama.cpp refuses more than its LLAMA_MAX_SEQ itself, with a message.)
        if (n_seq_max_ < 1) throw nb::value_error("n_seq_max must be at least 1");
        llama_context_params p = llama_context_default_params();
        p.n_ctx = n_ctx;
        // Several sequences share one KV buffer (any mix of them fits one ubatch); each may
        // grow up to n_ctx positions, and together they hold at most n_ctx cells.
        p.n_seq_max = n_seq_max_;
        p.kv_unified = n_seq_max_ > 1;
        p.n_batch = n_batch_;
        p.n_ubatch = n_ubatch ? n_ubatch : std::min<uint32_t>(n_batch_, p.n_ubatch);
        p.n_threads = n_threads;
        p.n_threads_batch = n_threads_batch;
        p.no_perf = false;
        ptr = family::call(family::error_kind::compute, "failed to create a llama context",
                           [&] { return llama_init_from_model(model->ptr, p); });
        attach_threadpools(n_threads, n_threads_batch);
        n_batch = (int32_t) llama_n_batch(ptr);
        n_seq_max = (int32_t) llama_n_seq_max(ptr);
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
            // On an asynchronous backend (a GPU, an RPC server) llama_decode returns once the
            // work is queued: wait for it here, so that the prompt's time is the prompt's (not
            // the first sampled token's) and a failure raises here.
            llama_synchronize(ptr);
            decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            has_logits = (rc == 0);
            return rc;
        }, family::nonzero_status{});
    }

    // The logits after decode() (row -1), or of a row that decode_seqs() returned.
    const float * last_logits(int32_t row = -1) const {
        if (row < 0) {
            if (!has_logits) throw nb::value_error("no logits: decode() tokens first");
            return llama_get_logits_ith(ptr, -1);
        }
        if (std::find(logit_rows.begin(), logit_rows.end(), row) == logit_rows.end()) {
            throw nb::value_error(("batch row " + std::to_string(row) +
                                   " has no logits (rows are what decode_seqs() returned)").c_str());
        }
        return llama_get_logits_ith(ptr, row);
    }

    llama_token greedy() const {
        return argmax(last_logits(), llama_vocab_n_tokens(model->vocab()));
    }

    // One llama_decode of chunks of several sequences: (seq_id, tokens, first position, whether
    // the chunk's last token needs logits). Returns the batch row of each chunk's logits (-1
    // where none were asked for). The chunks must fit one batch (n_batch tokens).
    struct chunk {
        int32_t seq;
        std::vector<llama_token> tokens;
        int32_t pos;
        bool logits;
    };

    std::vector<int32_t> decode_seqs(const std::vector<chunk> & chunks) {
        const int32_t n_vocab = llama_vocab_n_tokens(model->vocab());
        const int32_t n_ctx_seq = (int32_t) llama_n_ctx_seq(ptr);
        size_t total = 0;
        for (const chunk & c : chunks) {
            if (c.seq < 0 || c.seq >= n_seq_max) {
                throw nb::value_error(("sequence id " + std::to_string(c.seq) + " is out of range [0, " +
                                       std::to_string(n_seq_max) + ")").c_str());
            }
            if (c.tokens.empty()) throw nb::value_error("a chunk needs at least one token");
            if (c.pos < 0 || (int64_t) c.pos + (int64_t) c.tokens.size() > n_ctx_seq) {
                throw nb::value_error(("context overflow: sequence " + std::to_string(c.seq) + " at " +
                                       std::to_string(c.pos) + " + " + std::to_string(c.tokens.size()) +
                                       " tokens exceeds its " + std::to_string(n_ctx_seq) + " positions").c_str());
            }
            for (llama_token t : c.tokens) {
                if (t < 0 || t >= n_vocab) {
                    throw nb::value_error(("token id " + std::to_string(t) + " is out of range [0, " +
                                           std::to_string(n_vocab) + ")").c_str());
                }
            }
            total += c.tokens.size();
        }
        if (total == 0) throw nb::value_error("decode_seqs() needs at least one chunk");
        if (total > (size_t) n_batch) {
            throw nb::value_error(("the chunks hold " + std::to_string(total) +
                                   " tokens, more than one batch (n_batch " + std::to_string(n_batch) +
                                   ")").c_str());
        }
        std::vector<int32_t> rows;
        rows.reserve(chunks.size());
        int32_t i = 0;
        for (const chunk & c : chunks) {
            for (size_t k = 0; k < c.tokens.size(); ++k, ++i) {
                batch.token[i] = c.tokens[k];
                batch.pos[i] = c.pos + (llama_pos) k;
                batch.n_seq_id[i] = 1;
                batch.seq_id[i][0] = c.seq;
                batch.logits[i] = c.logits && k + 1 == c.tokens.size();
            }
            rows.push_back(c.logits ? i - 1 : -1);
        }
        batch.n_tokens = i;
        has_logits = false;
        logit_rows.clear();
        family::call(family::error_kind::compute, "llama_decode failed", [&] {
            const auto t0 = std::chrono::steady_clock::now();
            const int32_t rc = llama_decode(ptr, batch);
            ++n_decode_calls;
            llama_synchronize(ptr);  // as in decode()
            decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            return rc;
        }, family::nonzero_status{});
        for (int32_t r : rows) {
            if (r >= 0) logit_rows.push_back(r);
        }
        return rows;
    }

    // Drop positions [p0, p1) of one sequence (-1: every sequence; p1 -1: to the end).
    void seq_rm(int32_t seq, int32_t p0, int32_t p1) {
        if (seq < -1 || seq >= n_seq_max) throw nb::value_error("sequence id out of range");
        llama_memory_seq_rm(llama_get_memory(ptr), seq, p0, p1);
        logit_rows.clear();
    }

    void truncate(int32_t n) {
        if (n < 0 || n > n_past) {
            throw nb::value_error(("cannot truncate to " + std::to_string(n) + " tokens: the cache holds " +
                                   std::to_string(n_past)).c_str());
        }
        llama_memory_seq_rm(llama_get_memory(ptr), -1, n, -1);
        n_past = n;
        has_logits = false;
        logit_rows.clear();
    }
};

}  // namespace cyllama
