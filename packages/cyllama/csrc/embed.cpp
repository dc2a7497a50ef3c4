// Embeddings: a separate llama context with embeddings on, pooled per sequence by llama.cpp.
// Several texts share one batch (one sequence id each) as long as they fit.
#include "common.h"

#include <cmath>

namespace cyllama {

struct Embedder {
    nb::object model_ref;
    const Model * model = nullptr;
    llama_context * ptr = nullptr;
    llama_batch batch{};
    int32_t n_batch = 0;
    int32_t n_seq_max = 0;

    Embedder(nb::object model_obj, uint32_t n_ctx, int32_t n_threads, int pooling)
        : model_ref(model_obj), model(nb::cast<const Model *>(model_obj)) {
        llama_context_params p = llama_context_default_params();
        p.n_ctx = n_ctx;
        p.n_batch = n_ctx;
        p.n_ubatch = n_ctx;  // a pooled (possibly non-causal) sequence must fit one ubatch
        p.n_seq_max = 32;
        p.kv_unified = true;
        p.embeddings = true;
        p.pooling_type = (enum llama_pooling_type) pooling;
        p.n_threads = n_threads;
        p.n_threads_batch = n_threads;
        ptr = family::call(family::error_kind::compute, "failed to create an embedding context",
                           [&] { return llama_init_from_model(model->ptr, p); });
        n_batch = (int32_t) llama_n_batch(ptr);
        n_seq_max = (int32_t) llama_n_seq_max(ptr);
        batch = llama_batch_init(n_batch, 0, 1);
    }
    ~Embedder() {
        llama_batch_free(batch);
        if (ptr) llama_free(ptr);
    }
    Embedder(const Embedder &) = delete;
    Embedder & operator=(const Embedder &) = delete;

    int pooling() const { return (int) llama_pooling_type(ptr); }

    nb::ndarray<nb::numpy, float, nb::ndim<2>> embed(
        const std::vector<std::vector<llama_token>> & seqs, bool normalize) {
        const int32_t n_embd = llama_model_n_embd(model->ptr);
        const int32_t n_vocab = llama_vocab_n_tokens(model->vocab());
        if (pooling() == LLAMA_POOLING_TYPE_NONE || pooling() == LLAMA_POOLING_TYPE_RANK) {
            throw nb::value_error("this embedding context does not pool per sequence");
        }
        for (const auto & s : seqs) {
            if (s.empty()) throw nb::value_error("cannot embed an empty token sequence");
            if ((int32_t) s.size() > n_batch) {
                throw nb::value_error(("a text of " + std::to_string(s.size()) +
                                       " tokens does not fit the embedding context of " +
                                       std::to_string(n_batch)).c_str());
            }
            for (llama_token t : s) {
                if (t < 0 || t >= n_vocab) throw nb::value_error("token id out of range");
            }
        }
        const bool encoder_only =
            llama_model_has_encoder(model->ptr) && !llama_model_has_decoder(model->ptr);
        float * out = new float[std::max<size_t>(1, seqs.size() * (size_t) n_embd)];
        nb::capsule owner(out, [](void * p) noexcept { delete[] (float *) p; });
        bool missing = false;
        family::call(family::error_kind::compute, "embedding decode failed", [&] {
            int32_t rc = 0;
            size_t i = 0;
            while (i < seqs.size() && rc == 0 && !missing) {
                llama_memory_clear(llama_get_memory(ptr), true);
                const size_t first = i;
                batch.n_tokens = 0;
                while (i < seqs.size() && (int32_t) (i - first) < n_seq_max &&
                       batch.n_tokens + (int32_t) seqs[i].size() <= n_batch) {
                    const auto & s = seqs[i];
                    for (size_t j = 0; j < s.size(); ++j) {
                        const int32_t k = batch.n_tokens++;
                        batch.token[k] = s[j];
                        batch.pos[k] = (llama_pos) j;
                        batch.n_seq_id[k] = 1;
                        batch.seq_id[k][0] = (llama_seq_id) (i - first);
                        batch.logits[k] = 1;
                    }
                    ++i;
                }
                rc = encoder_only ? llama_encode(ptr, batch) : llama_decode(ptr, batch);
                for (size_t q = first; q < i && rc == 0; ++q) {
                    const float * e = llama_get_embeddings_seq(ptr, (llama_seq_id) (q - first));
                    if (!e) {
                        missing = true;
                        break;
                    }
                    float * dst = out + q * (size_t) n_embd;
                    double norm = 0.0;
                    for (int32_t d = 0; d < n_embd; ++d) norm += (double) e[d] * e[d];
                    const float scale = (normalize && norm > 0.0) ? (float) (1.0 / std::sqrt(norm)) : 1.0f;
                    for (int32_t d = 0; d < n_embd; ++d) dst[d] = e[d] * scale;
                }
            }
            return rc;
        }, family::nonzero_status{});
        if (missing) family::raise(family::error_kind::compute, "llama.cpp returned no embedding");
        return nb::ndarray<nb::numpy, float, nb::ndim<2>>(out, {seqs.size(), (size_t) n_embd},
                                                          owner);
    }
};

void bind_embedder(nb::module_ & m) {
    nb::class_<Embedder>(m, "Embedder", "A llama.cpp context computing pooled embeddings.")
        .def(nb::init<nb::object, uint32_t, int32_t, int>(), "model"_a, "n_ctx"_a, "n_threads"_a,
             "pooling"_a = -1)
        .def_prop_ro("pooling", &Embedder::pooling,
                     "llama.cpp's pooling type: 0 none, 1 mean, 2 cls, 3 last, 4 rank.")
        .def_ro("n_batch", &Embedder::n_batch)
        .def("embed", &Embedder::embed, "sequences"_a, "normalize"_a,
             "One pooled embedding row per token sequence.");
}

}  // namespace cyllama
