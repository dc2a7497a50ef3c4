// cywhisper._core: whisper.cpp on the family ggml. A thin RAII owner of whisper_context with
// whisper_full (GIL released, callbacks re-acquire it), results as plain tuples, language
// detection. Policy (audio decoding, validation, result classes) lives in the Python layer.
#include <family/binding.h>
#include <whisper.h>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using pcm_array = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// What cywhisper decides for one whisper_full run (from cywhisper.Decoding, through
// ggml_family.params: every field set from Python). Everything else is whisper.cpp's default,
// except no_context (each call starts afresh) and the printing (off).
struct FullParams {
    int32_t n_threads = 1;
    std::string language = "auto";
    bool translate = false;
    std::string initial_prompt;  // empty: none
    int32_t beam_size = 0;       // 0: greedy
    float temperature = 0.0f;
    bool fallback = true;        // re-decode a failed window hotter (temperature_inc)
    bool token_timestamps = false;
    int32_t max_len = 0;         // segment length limit in characters; 0: none
    bool split_on_word = false;
    std::string vad_model;       // empty: no voice activity detection
};

struct Whisper {
    whisper_context * ctx = nullptr;
    std::string path;
    std::atomic<bool> cancel{false};

    Whisper(const std::string & path_, bool use_gpu, bool flash_attn, int gpu_device)
        : path(path_) {
        whisper_context_params p = whisper_context_default_params();
        p.use_gpu = use_gpu;
        p.flash_attn = flash_attn;
        p.gpu_device = gpu_device;
        // A corrupt header can make whisper.cpp's loader throw (absurd sizes): family::call
        // turns that into ModelLoadError too.
        ctx = family::call(family::error_kind::model_load, "failed to load Whisper model from " + path,
                           [&] { return whisper_init_from_file_with_params(path.c_str(), p); });
    }
    ~Whisper() {
        if (ctx) whisper_free(ctx);
    }
    Whisper(const Whisper &) = delete;
    Whisper & operator=(const Whisper &) = delete;

    // One segment as a tuple: (t0, t1) in centiseconds, text bytes, no-speech probability,
    // speaker turn, tokens [(id, text bytes, p, log p, t0, t1)].
    nb::typed<nb::tuple, nb::any, nb::ellipsis> segment(int i) const {
        nb::list tokens;
        const int n = whisper_full_n_tokens(ctx, i);
        for (int j = 0; j < n; ++j) {
            whisper_token_data d = whisper_full_get_token_data(ctx, i, j);
            const char * text = whisper_full_get_token_text(ctx, i, j);
            tokens.append(nb::make_tuple(d.id, nb::bytes(text, std::strlen(text)), d.p, d.plog,
                                         d.t0, d.t1));
        }
        const char * text = whisper_full_get_segment_text(ctx, i);
        return nb::borrow<nb::typed<nb::tuple, nb::any, nb::ellipsis>>(nb::make_tuple(
                              whisper_full_get_segment_t0(ctx, i),
                              whisper_full_get_segment_t1(ctx, i),
                              nb::bytes(text, std::strlen(text)),
                              whisper_full_get_segment_no_speech_prob(ctx, i),
                              whisper_full_get_segment_speaker_turn_next(ctx, i), tokens));
    }

    struct callbacks {
        Whisper * self;
        nb::object on_segment, on_progress;
        std::exception_ptr error;
        family::interrupt_poll interrupted{};  // Ctrl-C: the KeyboardInterrupt goes to error
    };

    static void segment_cb(whisper_context * ctx, whisper_state *, int n_new, void * user) {
        auto * cb = static_cast<callbacks *>(user);
        if (cb->error || cb->on_segment.is_none()) return;
        nb::gil_scoped_acquire acquire;
        try {
            const int n = whisper_full_n_segments(ctx);
            nb::list segs;
            for (int i = n - n_new; i < n; ++i) segs.append(cb->self->segment(i));
            cb->on_segment(segs);
        } catch (...) {
            cb->error = std::current_exception();
            cb->self->cancel.store(true);
        }
    }

    static void progress_cb(whisper_context *, whisper_state *, int progress, void * user) {
        auto * cb = static_cast<callbacks *>(user);
        if (cb->error || cb->on_progress.is_none()) return;
        nb::gil_scoped_acquire acquire;
        try {
            cb->on_progress(progress);
        } catch (...) {
            cb->error = std::current_exception();
            cb->self->cancel.store(true);
        }
    }

    static bool abort_requested(void * user) {
        auto * cb = static_cast<callbacks *>(user);
        if (!cb->self->cancel.load() && cb->interrupted(cb->error)) cb->self->cancel.store(true);
        return cb->self->cancel.load();
    }

    static bool encoder_begin(whisper_context *, whisper_state *, void * user) {
        return !static_cast<callbacks *>(user)->self->cancel.load();
    }

    // Runs whisper_full; returns the number of segments. Raises what a callback raised, and
    // ComputeError when whisper.cpp fails; a cancelled run returns the segments so far.
    int full(pcm_array pcm, const FullParams & o, nb::object on_segment, nb::object on_progress) {
        whisper_full_params p = whisper_full_default_params(
            o.beam_size > 0 ? WHISPER_SAMPLING_BEAM_SEARCH : WHISPER_SAMPLING_GREEDY);
        p.n_threads = o.n_threads;
        p.language = o.language.c_str();
        p.translate = o.translate;
        p.initial_prompt = o.initial_prompt.empty() ? nullptr : o.initial_prompt.c_str();
        p.no_context = true;
        p.token_timestamps = o.token_timestamps;
        p.max_len = o.max_len;
        p.split_on_word = o.split_on_word;
        p.temperature = o.temperature;
        if (!o.fallback) p.temperature_inc = 0.0f;
        if (o.beam_size > 0) p.beam_search.beam_size = o.beam_size;
        p.print_progress = p.print_realtime = p.print_timestamps = p.print_special = false;
        p.vad = !o.vad_model.empty();
        p.vad_model_path = p.vad ? o.vad_model.c_str() : nullptr;

        callbacks cb{this, on_segment, on_progress, nullptr};
        p.new_segment_callback = &segment_cb;
        p.new_segment_callback_user_data = &cb;
        p.progress_callback = &progress_cb;
        p.progress_callback_user_data = &cb;
        p.abort_callback = &abort_requested;
        p.abort_callback_user_data = &cb;
        p.encoder_begin_callback = &encoder_begin;
        p.encoder_begin_callback_user_data = &cb;

        cancel.store(false);
        // A cancelled run (by cancel() or a callback's exception) returns the segments so far.
        family::call(family::error_kind::compute, "whisper_full failed", [&] {
            const int rc = whisper_full(ctx, p, pcm.data(), (int) pcm.shape(0));
            return cancel.load() ? 0 : rc;
        }, family::nonzero_status{});
        if (cb.error) std::rethrow_exception(cb.error);
        return whisper_full_n_segments(ctx);
    }

    std::vector<float> detect_language(pcm_array pcm, int n_threads, int offset_ms) {
        if (!whisper_is_multilingual(ctx)) {
            throw nb::value_error("this model is English-only: it cannot detect languages");
        }
        std::vector<float> probs((size_t) whisper_lang_max_id() + 1, 0.0f);
        family::call(family::error_kind::compute, "language detection failed", [&] {
            int rc = whisper_pcm_to_mel(ctx, pcm.data(), (int) pcm.shape(0), n_threads);
            if (rc == 0) rc = whisper_lang_auto_detect(ctx, offset_ms, n_threads, probs.data()) < 0;
            return rc != 0;
        }, [](bool failed) { return failed; });
        return probs;
    }
};

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "Low-level bindings of whisper.cpp on the family ggml (private: use cywhisper).";
    family::bind_ggml(m, whisper_log_set);

    using P = FullParams;
    family::params<P>(m, "FullParams", "The settings of one whisper_full run (see cywhisper.Decoding).")
        .field("n_threads", &P::n_threads, "CPU threads")
        .field("language", &P::language, "language code, or 'auto' to detect it")
        .field("translate", &P::translate, "translate into English")
        .field("initial_prompt", &P::initial_prompt, "text conditioning the first window; empty: none")
        .field("beam_size", &P::beam_size, "beam search with this many beams; 0: greedy")
        .field("temperature", &P::temperature, "sampling temperature of the first attempt")
        .field("fallback", &P::fallback, "decode a failed window again at a higher temperature")
        .field("token_timestamps", &P::token_timestamps, "time every token")
        .field("max_len", &P::max_len, "longest segment in characters; 0: no limit")
        .field("split_on_word", &P::split_on_word, "split segments at word boundaries (max_len)")
        .field("vad_model", &P::vad_model, "Silero VAD model file; empty: no VAD")
        .done();

    nb::class_<Whisper>(m, "Whisper", "A loaded whisper.cpp model with its decoding state.")
        .def(nb::init<const std::string &, bool, bool, int>(), "path"_a, "use_gpu"_a = false,
             "flash_attn"_a = true, "gpu_device"_a = 0)
        .def_ro("path", &Whisper::path)
        .def("full", &Whisper::full, "pcm"_a, "params"_a, "on_segment"_a = nb::none(),
             "on_progress"_a = nb::none(),
             "Transcribe 16 kHz mono float32 samples; returns the number of segments.")
        .def("segment", &Whisper::segment, "index"_a, "Segment i of the last full() call.")
        .def("n_segments", [](const Whisper & s) { return whisper_full_n_segments(s.ctx); })
        .def("lang_id", [](const Whisper & s) { return whisper_full_lang_id(s.ctx); },
             "Language id of the last full() call.")
        .def("cancel", [](Whisper & s) { s.cancel.store(true); },
             "Ask a running full() (in another thread) to stop at the next step.")
        .def("detect_language", &Whisper::detect_language, "pcm"_a, "n_threads"_a,
             "offset_ms"_a = 0, "Probability of each language id for the first 30 s.")
        .def_prop_ro("is_multilingual", [](const Whisper & s) { return (bool) whisper_is_multilingual(s.ctx); })
        .def_prop_ro("model_type", [](const Whisper & s) { return std::string(whisper_model_type_readable(s.ctx)); })
        .def_prop_ro("token_eot", [](const Whisper & s) { return whisper_token_eot(s.ctx); })
        .def_prop_ro("n_vocab", [](const Whisper & s) { return whisper_n_vocab(s.ctx); })
        .def_prop_ro("n_text_ctx", [](const Whisper & s) { return whisper_n_text_ctx(s.ctx); })
        .def_prop_ro("n_mels", [](const Whisper & s) { return whisper_model_n_mels(s.ctx); })
        .def("timings",
             [](const Whisper & s) {
                 whisper_timings * t = whisper_get_timings(s.ctx);
                 nb::typed<nb::dict, nb::str, float> out;
                 if (!t) return out;
                 out["sample_ms"] = t->sample_ms;
                 out["encode_ms"] = t->encode_ms;
                 out["decode_ms"] = t->decode_ms;
                 out["batchd_ms"] = t->batchd_ms;
                 out["prompt_ms"] = t->prompt_ms;
                 return out;
             },
             "whisper.cpp's per-step timings of the last run (averages per call, ms).");

    m.def("lang_max_id", &whisper_lang_max_id);
    m.def("lang_id", [](const std::string & code) { return whisper_lang_id(code.c_str()); },
          "code"_a, "Language id of a code (\"en\") or English name (\"english\"); -1 if unknown.");
    m.def("lang_str", [](int id) { const char * s = whisper_lang_str(id); return std::string(s ? s : ""); }, "id"_a);
    m.def("lang_str_full", [](int id) { const char * s = whisper_lang_str_full(id); return std::string(s ? s : ""); }, "id"_a);
    m.def("whisper_version", [] { return std::string(whisper_version()); });
    m.def("whisper_system_info", [] { return std::string(whisper_print_system_info()); });
}
