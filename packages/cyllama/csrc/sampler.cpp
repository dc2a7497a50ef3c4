// Sampling: llama.cpp's sampler chain (penalties, DRY, top-k/p, min-p, typical, temperature,
// mirostat, seeded distribution) plus an optional GBNF grammar, and log-probabilities.
//
// The grammar is checked against the token the chain picked first and only applied to the
// whole vocabulary when it rejects that token (as llama.cpp's common sampler does): on a 262k
// vocabulary that is the difference between microseconds and milliseconds per token.
#include "context.h"

#include <nanobind/stl/pair.h>

#include <queue>
#include <utility>

namespace cyllama {

// Index of the first maximum of l[0..n) (the greedy choice, on every generated token). One pass
// over blocks of 512 floats with 16 independent maxima, which the compiler vectorises (and
// clones for AVX2 and AVX-512, picked at load time), remembering the first block that raised
// the maximum; then a search inside that block only. ~25 us on a 262k vocabulary, against
// ~120 us for max_element or a full second search pass.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
int32_t argmax(const float * l, int32_t n) {
    constexpr int32_t block = 512;
    float best = -INFINITY;
    int32_t best_block = 0;
    int32_t i = 0;
    for (; i + block <= n; i += block) {
        float lanes[16];
        for (int j = 0; j < 16; ++j) lanes[j] = l[i + j];
        for (int32_t k = 16; k < block; k += 16) {
            for (int j = 0; j < 16; ++j) lanes[j] = lanes[j] > l[i + k + j] ? lanes[j] : l[i + k + j];
        }
        float m = lanes[0];
        for (int j = 1; j < 16; ++j) m = m > lanes[j] ? m : lanes[j];
        if (m > best) {
            best = m;
            best_block = i;
        }
    }
    int32_t found = -1;
    for (int32_t k = best_block; k < best_block + block && k < i; ++k) {
        if (l[k] == best) {
            found = k;
            break;
        }
    }
    for (; i < n; ++i) {  // the tail after the last whole block
        if (l[i] > best || found < 0) {
            best = l[i];
            found = i;
        }
    }
    return found < 0 ? 0 : found;
}

// Everything a sampler chain is made of: filled field by field from cyllama.Sampling (and the
// grammar) through ggml_family.params, so a misspelt or forgotten setting is an error in Python.
struct SamplerParams {
    float temperature = 0.0f;
    int32_t top_k = 0;
    float top_p = 1.0f;
    float min_p = 0.0f;
    float typical_p = 1.0f;
    int32_t penalty_last_n = 0;
    float repeat_penalty = 1.0f;
    float frequency_penalty = 0.0f;
    float presence_penalty = 0.0f;
    int32_t mirostat = 0;
    float mirostat_tau = 5.0f;
    float mirostat_eta = 0.1f;
    float dry_multiplier = 0.0f;
    float dry_base = 1.75f;
    int32_t dry_allowed_length = 2;
    int32_t dry_penalty_last_n = 0;
    std::vector<std::string> dry_sequence_breakers;
    uint32_t seed = 0;
    std::vector<std::pair<int32_t, float>> logit_bias;
    std::string grammar;
    std::string grammar_root = "root";
};

struct Sampler {
    nb::object model_ref;
    const Model * model = nullptr;
    llama_sampler * chain = nullptr;    // null: plain argmax
    llama_sampler * grammar = nullptr;  // null: unconstrained
    std::vector<llama_token_data> cur;
    int32_t n_vocab = 0;

    Sampler(nb::object model_obj, const SamplerParams & p)
        : model_ref(model_obj), model(nb::cast<const Model *>(model_obj)) {
        const llama_vocab * vocab = model->vocab();
        n_vocab = llama_vocab_n_tokens(vocab);
        if (!p.grammar.empty()) {
            grammar = family::call(family::error_kind::value, "invalid GBNF grammar", [&] {
                return llama_sampler_init_grammar(vocab, p.grammar.c_str(), p.grammar_root.c_str());
            });
        }
        std::vector<llama_sampler *> steps;
        if (!p.logit_bias.empty()) {
            std::vector<llama_logit_bias> bias;
            for (auto [tok, b] : p.logit_bias) bias.push_back({tok, b});
            steps.push_back(llama_sampler_init_logit_bias(n_vocab, (int32_t) bias.size(),
                                                          bias.data()));
        }
        if (p.penalty_last_n != 0 &&
            (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f)) {
            steps.push_back(llama_sampler_init_penalties(n_vocab, p.penalty_last_n, p.repeat_penalty,
                                                         p.frequency_penalty, p.presence_penalty));
        }
        if (p.dry_multiplier > 0.0f) {
            std::vector<const char *> breakers;
            for (const auto & b : p.dry_sequence_breakers) breakers.push_back(b.c_str());
            steps.push_back(llama_sampler_init_dry(vocab, p.dry_multiplier, p.dry_base,
                                                   p.dry_allowed_length, p.dry_penalty_last_n,
                                                   breakers.data(), breakers.size()));
        }
        if (p.temperature <= 0.0f) {
            if (!steps.empty()) steps.push_back(llama_sampler_init_greedy());
        } else if (p.mirostat == 1) {
            steps.push_back(llama_sampler_init_temp(p.temperature));
            steps.push_back(llama_sampler_init_mirostat(n_vocab, p.seed, p.mirostat_tau,
                                                        p.mirostat_eta, 100));
        } else if (p.mirostat == 2) {
            steps.push_back(llama_sampler_init_temp(p.temperature));
            steps.push_back(llama_sampler_init_mirostat_v2(p.seed, p.mirostat_tau, p.mirostat_eta));
        } else {
            if (p.top_k > 0) steps.push_back(llama_sampler_init_top_k(p.top_k));
            if (p.typical_p < 1.0f) steps.push_back(llama_sampler_init_typical(p.typical_p, 1));
            if (p.top_p < 1.0f) steps.push_back(llama_sampler_init_top_p(p.top_p, 1));
            if (p.min_p > 0.0f) steps.push_back(llama_sampler_init_min_p(p.min_p, 1));
            steps.push_back(llama_sampler_init_temp(p.temperature));
            steps.push_back(llama_sampler_init_dist(p.seed));
        }
        if (!steps.empty()) {
            llama_sampler_chain_params cp = llama_sampler_chain_default_params();
            cp.no_perf = true;
            chain = llama_sampler_chain_init(cp);
            for (llama_sampler * st : steps) llama_sampler_chain_add(chain, st);
        }
    }
    ~Sampler() {
        if (chain) llama_sampler_free(chain);
        if (grammar) llama_sampler_free(grammar);
    }
    Sampler(const Sampler &) = delete;
    Sampler & operator=(const Sampler &) = delete;

    llama_token_data_array fill(const float * logits) {
        cur.resize((size_t) n_vocab);
        for (int32_t i = 0; i < n_vocab; ++i) cur[(size_t) i] = {i, logits[i], 0.0f};
        return {cur.data(), cur.size(), -1, false};
    }

    // The chain's (or argmax's) choice among the candidates.
    llama_token choose(llama_token_data_array & arr) {
        if (chain) {
            llama_sampler_apply(chain, &arr);
            if (arr.selected < 0 || arr.selected >= (int64_t) arr.size)
                throw nb::value_error("the sampler chain selected no token");
            return arr.data[arr.selected].id;
        }
        size_t best = 0;
        for (size_t i = 1; i < arr.size; ++i) {
            if (arr.data[i].logit > arr.data[best].logit) best = i;
        }
        return arr.data[best].id;
    }

    bool grammar_allows(llama_token tok) {
        llama_token_data single{tok, 1.0f, 0.0f};
        llama_token_data_array one{&single, 1, -1, false};
        llama_sampler_apply(grammar, &one);
        return single.logit != -INFINITY;
    }

    llama_token sample(const Context & ctx, int32_t row) {
        const float * logits = ctx.last_logits(row);
        llama_token tok;
        if (chain) {
            llama_token_data_array arr = fill(logits);
            tok = choose(arr);
        } else {
            tok = argmax(logits, n_vocab);
        }
        if (grammar && !grammar_allows(tok)) {
            llama_token_data_array arr = fill(logits);
            llama_sampler_apply(grammar, &arr);
            bool any = false;
            for (size_t i = 0; i < arr.size && !any; ++i) any = arr.data[i].logit != -INFINITY;
            if (!any) {
                family::raise(family::error_kind::compute,
                              "the grammar allows no token here (is it satisfiable?)");
            }
            tok = choose(arr);
        }
        return tok;
    }

    void accept(llama_token tok, bool to_grammar) {
        if (grammar && to_grammar) llama_sampler_accept(grammar, tok);
        if (chain) llama_sampler_accept(chain, tok);
    }
};

// log-softmax of the last logits: the chosen token's log-probability and the top_n tokens.
static std::pair<float, std::vector<std::pair<llama_token, float>>> logprobs(
    const Context & ctx, llama_token token, int32_t top_n, int32_t row) {
    const int32_t n = llama_vocab_n_tokens(ctx.model->vocab());
    if (token < 0 || token >= n) throw nb::value_error("token id out of range");
    const float * l = ctx.last_logits(row);
    const float mx = l[argmax(l, n)];
    double sum = 0.0;
    for (int32_t i = 0; i < n; ++i) sum += std::exp((double) (l[i] - mx));
    const float log_z = mx + (float) std::log(sum);
    // Min-heap of the top_n (logit, -id): ties keep the lower id, as argmax does.
    using item = std::pair<float, int32_t>;
    std::priority_queue<item, std::vector<item>, std::greater<item>> heap;
    const size_t k = (size_t) std::max(0, std::min(top_n, n));
    for (int32_t i = 0; i < n && k > 0; ++i) {
        if (heap.size() < k) {
            heap.push({l[i], -i});
        } else if (l[i] > heap.top().first) {
            heap.pop();
            heap.push({l[i], -i});
        }
    }
    std::vector<std::pair<llama_token, float>> top(heap.size());
    for (size_t i = top.size(); i-- > 0; heap.pop()) {
        top[i] = {-heap.top().second, heap.top().first - log_z};
    }
    return {l[token] - log_z, top};
}

void bind_sampler(nb::module_ & m) {
    using P = SamplerParams;
    family::params<P>(m, "SamplerParams", "The settings of one sampler chain (see cyllama.Sampling).")
        .field("temperature", &P::temperature, "0 (or less): greedy; else the temperature")
        .field("top_k", &P::top_k, "keep the k most likely tokens; 0 keeps all")
        .field("top_p", &P::top_p, "nucleus sampling threshold; 1 is off")
        .field("min_p", &P::min_p, "drop tokens below min_p x the best one's probability; 0 is off")
        .field("typical_p", &P::typical_p, "locally typical sampling; 1 is off")
        .field("penalty_last_n", &P::penalty_last_n, "penalty window in tokens; 0 disables")
        .field("repeat_penalty", &P::repeat_penalty, "repetition penalty; 1 is off")
        .field("frequency_penalty", &P::frequency_penalty, "frequency penalty; 0 is off")
        .field("presence_penalty", &P::presence_penalty, "presence penalty; 0 is off")
        .field("mirostat", &P::mirostat, "0 off, 1 Mirostat, 2 Mirostat 2.0")
        .field("mirostat_tau", &P::mirostat_tau, "Mirostat's target surprise")
        .field("mirostat_eta", &P::mirostat_eta, "Mirostat's learning rate")
        .field("dry_multiplier", &P::dry_multiplier, "DRY strength; 0 is off")
        .field("dry_base", &P::dry_base, "DRY's exponential base")
        .field("dry_allowed_length", &P::dry_allowed_length, "repeats this long are not penalised")
        .field("dry_penalty_last_n", &P::dry_penalty_last_n, "DRY's window in tokens; 0 disables")
        .field("dry_sequence_breakers", &P::dry_sequence_breakers, "strings that end a DRY sequence")
        .field("seed", &P::seed, "seed of the draw (and of Mirostat)")
        .field("logit_bias", &P::logit_bias, "(token, value added to its logit) pairs")
        .field("grammar", &P::grammar, "GBNF grammar the output must follow; empty: none")
        .field("grammar_root", &P::grammar_root, "the grammar's start rule")
        .done();
    nb::class_<Sampler>(m, "Sampler", "A llama.cpp sampler chain with an optional grammar.")
        .def(nb::init<nb::object, const SamplerParams &>(), "model"_a, "params"_a)
        .def("sample", &Sampler::sample, "context"_a, "row"_a = -1,
             "Choose the next token from the context's last logits (or a decode_seqs() row).")
        .def("accept", &Sampler::accept, "token"_a, "grammar"_a = true,
             "Record a token (advances the grammar and the penalty history).")
        .def("accept_many",
             [](Sampler & s, const std::vector<llama_token> & toks) {
                 for (llama_token t : toks) s.accept(t, false);
             },
             "tokens"_a, "Record prompt tokens in the penalty history (not the grammar).")
        .def_prop_ro("has_grammar", [](const Sampler & s) { return s.grammar != nullptr; })
        .def_prop_ro("is_greedy", [](const Sampler & s) { return s.chain == nullptr; });
    m.def("logprobs", &logprobs, "context"_a, "token"_a, "top_n"_a, "row"_a = -1,
          "log-softmax of the last logits (or of a decode_seqs() row): (logprob of token, "
          "[(token, logprob)] of the top_n).");
}

}  // namespace cyllama
