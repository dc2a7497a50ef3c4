// cysd._core: stable-diffusion.cpp on the family ggml. RAII owners of sd_ctx_t and
// upscaler_ctx_t; generation with the GIL released (the progress callback re-acquires it) and
// cancellation through the abort callback our patch adds. Images cross as (width, height,
// channels, bytes). Policy (validation, PIL/NumPy conversion, LoRA prompt syntax) is Python's.
#include <family/binding.h>
#include <stable-diffusion.h>

#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "tensors.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using image_tuple = std::tuple<uint32_t, uint32_t, uint32_t, nb::bytes>;
using image_arg = nb::typed<nb::tuple, int, int, int, nb::bytes>;

// What cysd decides for a new context (from StableDiffusion's arguments, through
// ggml_family.params: every field set from Python). The rest is sd_ctx_params_init's, except
// that weights stay loaded (a context generates many times) and the VAE can encode (img2img).
struct ContextParams {
    std::string model, diffusion_model, vae, clip_l, clip_g, t5xxl, taesd;  // empty: not given
    int32_t n_threads = 1;
    int32_t wtype = -1;  // an sd_type_t to convert the weights to on load; -1: as stored
    int32_t rng = 0;     // an rng_type_t
    bool mmap = false;
    bool flash_attn = false;
    bool offload_params_to_cpu = false;
    bool keep_clip_on_cpu = false;
    bool keep_vae_on_cpu = false;
    std::string device;  // the ggml device to create the context on ("CPU", "CUDA0")
};

// One generation (from the prompt, the size and a cysd.Sampling, through ggml_family.params).
struct GenerateParams {
    std::string prompt, negative_prompt;
    int32_t width = 512, height = 512;
    int32_t steps = 20;
    float cfg_scale = 7.0f;
    std::string sampler, scheduler;  // empty: the model's default
    int64_t seed = 42;
    int32_t batch_count = 1;
    int32_t clip_skip = -1;
    std::optional<float> eta;  // None: the sampler's default
    float strength = 0.75f;    // img2img / inpaint
    bool vae_tiling = false;
    std::vector<std::pair<std::string, float>> loras;  // (file, weight)
};

// sd.cpp's log has its own level enum; route it through the family's line-assembling callback.
void sd_log(enum sd_log_level_t level, const char * text, void *) {
    ggml_log_level l = GGML_LOG_LEVEL_INFO;
    switch (level) {
        case SD_LOG_DEBUG: l = GGML_LOG_LEVEL_DEBUG; break;
        case SD_LOG_INFO: l = GGML_LOG_LEVEL_INFO; break;
        case SD_LOG_WARN: l = GGML_LOG_LEVEL_WARN; break;
        case SD_LOG_ERROR: l = GGML_LOG_LEVEL_ERROR; break;
    }
    family::log_callback(l, text, nullptr);
}

// sd.cpp keeps its progress and abort callbacks in process globals: one generation (or
// upscale) runs at a time in a process, whatever the number of contexts.
std::mutex g_run_mutex;

struct run_state {
    nb::object progress;  // callable(step, steps, seconds_per_step) -> bool | None, or None
    std::atomic<bool> cancelled{false};
    std::exception_ptr error;  // raised by the progress callback, or Ctrl-C's KeyboardInterrupt
    family::interrupt_poll interrupted{};
    int calls = 0;
};

void on_progress(int step, int steps, float time, void * data) {
    auto * st = static_cast<run_state *>(data);
    if (step <= 0 || st->progress.is_none() || st->error) return;
    nb::gil_scoped_acquire gil;
    try {
        st->calls++;
        nb::object r = st->progress(step, steps, time);
        if (!r.is_none() && !nb::cast<bool>(r)) st->cancelled = true;
    } catch (...) {
        st->error = std::current_exception();
        st->cancelled = true;
    }
}

bool on_abort(void * data) {
    auto * st = static_cast<run_state *>(data);
    if (!st->cancelled.load() && st->interrupted(st->error)) st->cancelled = true;
    return st->cancelled.load();
}

// Outside a run: sd.cpp would print progress bars (model loading) to stdout without a callback.
void quiet_progress(int, int, float, void *) {}

struct run_guard {
    std::lock_guard<std::mutex> lock;
    explicit run_guard(run_state & st) : lock(g_run_mutex) {
        sd_set_progress_callback(on_progress, &st);
        sd_set_abort_callback(on_abort, &st);
    }
    ~run_guard() {
        sd_set_progress_callback(quiet_progress, nullptr);
        sd_set_abort_callback(nullptr, nullptr);
    }
};

sd_image_t as_image(const nb::handle & t) {
    if (t.is_none()) return sd_image_t{0, 0, 0, nullptr};
    auto tup = nb::cast<nb::tuple>(t);
    auto data = nb::cast<nb::bytes>(tup[3]);
    sd_image_t img;
    img.width = nb::cast<uint32_t>(tup[0]);
    img.height = nb::cast<uint32_t>(tup[1]);
    img.channel = nb::cast<uint32_t>(tup[2]);
    if ((size_t) img.width * img.height * img.channel != data.size()) {
        throw nb::value_error("image bytes do not match width x height x channels");
    }
    img.data = (uint8_t *) data.c_str();  // read only by sd.cpp; the tuple outlives the call
    return img;
}

image_tuple take_image(sd_image_t & img) {
    image_tuple out{img.width, img.height, img.channel,
                    nb::bytes(img.data, (size_t) img.width * img.height * img.channel)};
    std::free(img.data);
    img.data = nullptr;
    return out;
}

// sd.cpp picks the device of a new context or upscaler from a process global (our patch 0005):
// set it, create, restore the default, all under one lock. Called inside family::call, so with
// the GIL released (the vocabulary loaders take it back inside); corrupt files can make the
// loaders throw (absurd sizes, bad JSON), which family::call turns into ModelLoadError.
std::mutex g_device_mutex;

template <typename F>
auto created_on(const std::string & device, F && f) {
    std::lock_guard<std::mutex> lock(g_device_mutex);
    struct restore {
        ~restore() { sd_set_main_device(nullptr); }
    } on_exit;
    sd_set_main_device(device.c_str());
    return f();
}

const char * or_null(const std::string & s) { return s.empty() ? nullptr : s.c_str(); }

void free_images(sd_image_t * images, int count) {
    if (!images) return;
    for (int i = 0; i < count; ++i) std::free(images[i].data);
    std::free(images);
}

struct Context {
    sd_ctx_t * ctx = nullptr;

    explicit Context(const ContextParams & o) {
        sd_ctx_params_t p;
        sd_ctx_params_init(&p);
        p.model_path = o.model.c_str();
        p.clip_l_path = o.clip_l.c_str();
        p.clip_g_path = o.clip_g.c_str();
        p.t5xxl_path = o.t5xxl.c_str();
        p.diffusion_model_path = o.diffusion_model.c_str();
        p.vae_path = o.vae.c_str();
        p.taesd_path = o.taesd.c_str();
        p.vae_decode_only = false;
        p.free_params_immediately = false;
        p.n_threads = o.n_threads;
        p.wtype = o.wtype < 0 ? SD_TYPE_COUNT : (sd_type_t) o.wtype;
        p.rng_type = (rng_type_t) o.rng;
        p.enable_mmap = o.mmap;
        p.flash_attn = o.flash_attn;
        p.diffusion_flash_attn = o.flash_attn;
        p.offload_params_to_cpu = o.offload_params_to_cpu;
        p.keep_clip_on_cpu = o.keep_clip_on_cpu;
        p.keep_vae_on_cpu = o.keep_vae_on_cpu;
        ctx = family::call(family::error_kind::model_load,
                           "stable-diffusion.cpp could not load the model",
                           [&] { return created_on(o.device, [&] { return new_sd_ctx(&p); }); });
    }
    ~Context() {
        if (ctx) free_sd_ctx(ctx);
    }
    Context(const Context &) = delete;
    Context & operator=(const Context &) = delete;

    std::string default_sampler() const { return sd_sample_method_name(sd_get_default_sample_method(ctx)); }
    std::string default_scheduler(const std::string & sampler) const {
        return sd_scheduler_name(sd_get_default_scheduler(ctx, str_to_sample_method(sampler.c_str())));
    }

    // The images; raises Cancelled when the progress callback stopped the run.
    std::vector<image_tuple> generate(const GenerateParams & o, nb::object init_image,
                                      nb::object mask_image, nb::object progress) {
        sd_img_gen_params_t p;
        sd_img_gen_params_init(&p);
        p.prompt = o.prompt.c_str();
        p.negative_prompt = o.negative_prompt.c_str();
        p.clip_skip = o.clip_skip;
        p.width = o.width;
        p.height = o.height;
        p.strength = o.strength;
        p.seed = o.seed;
        p.batch_count = o.batch_count;
        sd_sample_params_t & s = p.sample_params;
        s.sample_steps = o.steps;
        s.guidance.txt_cfg = o.cfg_scale;
        if (o.eta) s.eta = *o.eta;
        s.sample_method = o.sampler.empty() ? SAMPLE_METHOD_COUNT : str_to_sample_method(o.sampler.c_str());
        s.scheduler = o.scheduler.empty() ? SCHEDULER_COUNT : str_to_scheduler(o.scheduler.c_str());
        p.vae_tiling_params.enabled = o.vae_tiling;
        p.init_image = as_image(init_image);
        p.mask_image = as_image(mask_image);
        std::vector<sd_lora_t> loras;
        for (const auto & [path, weight] : o.loras) loras.push_back(sd_lora_t{false, weight, path.c_str()});
        p.loras = loras.data();
        p.lora_count = (uint32_t) loras.size();

        run_state st;
        st.progress = progress;
        sd_image_t * images = family::call(
            family::error_kind::compute, "stable-diffusion.cpp failed to generate an image",
            [&] {
                run_guard guard(st);
                return generate_image(ctx, &p);
            },
            [&](sd_image_t * out) { return !out && !st.cancelled; });
        if (st.cancelled) {  // by the callback's answer, or by an exception it raised
            free_images(images, p.batch_count);
            if (st.error) std::rethrow_exception(st.error);
            throw family::error(family::error_kind::cancelled,
                                "generation cancelled by the progress callback after " +
                                    std::to_string(st.calls) + " step(s)");
        }
        std::vector<image_tuple> out;
        for (int i = 0; i < p.batch_count; ++i) {
            if (images[i].data) out.push_back(take_image(images[i]));
        }
        std::free(images);
        return out;
    }
};

struct Upscaler {
    upscaler_ctx_t * ctx = nullptr;

    Upscaler(const std::string & path, int n_threads, int tile_size, bool offload, bool direct,
             const std::string & device) {
        ctx = family::call(family::error_kind::model_load,
                           "stable-diffusion.cpp could not load the ESRGAN model " + path, [&] {
                               return created_on(device, [&] {
                                   return new_upscaler_ctx(path.c_str(), offload, direct,
                                                           n_threads, tile_size);
                               });
                           });
    }
    ~Upscaler() {
        if (ctx) free_upscaler_ctx(ctx);
    }
    Upscaler(const Upscaler &) = delete;
    Upscaler & operator=(const Upscaler &) = delete;

    int factor() const { return get_upscale_factor(ctx); }

    image_tuple run(const image_arg & image, uint32_t factor) {
        sd_image_t in = as_image(image);
        sd_image_t out{0, 0, 0, nullptr};
        run_state st;
        st.progress = nb::none();
        out = family::call(family::error_kind::compute, "ESRGAN upscaling failed", [&] {
            run_guard guard(st);
            return upscale(ctx, in, factor);
        }, [&](const sd_image_t & img) { return img.data == nullptr && !st.error; });
        if (st.error) {  // Ctrl-C
            std::free(out.data);
            std::rethrow_exception(st.error);
        }
        return take_image(out);
    }
};

std::vector<std::string> names(int count, const char * (*name)(int)) {
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
        const char * n = name(i);
        if (n && *n && std::strcmp(n, "NONE") != 0) out.emplace_back(n);
    }
    return out;
}

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "stable-diffusion.cpp on the family ggml (internal; use the cysd package).";
    family::bind_ggml(m, nullptr);
    sd_set_log_callback(sd_log, nullptr);
    sd_set_progress_callback(quiet_progress, nullptr);

    using C = ContextParams;
    family::params<C>(m, "ContextParams", "The settings of a new sd_ctx_t (see StableDiffusion).")
        .field("model", &C::model, "full checkpoint file; empty: not given")
        .field("diffusion_model", &C::diffusion_model, "diffusion model file (UNet or DiT)")
        .field("vae", &C::vae, "VAE file")
        .field("clip_l", &C::clip_l, "CLIP-L text encoder file")
        .field("clip_g", &C::clip_g, "CLIP-G text encoder file")
        .field("t5xxl", &C::t5xxl, "T5-XXL text encoder file")
        .field("taesd", &C::taesd, "TAESD (tiny autoencoder) file")
        .field("n_threads", &C::n_threads, "CPU threads")
        .field("wtype", &C::wtype, "sd_type_t to convert the weights to; -1: as stored")
        .field("rng", &C::rng, "rng_type_t of the noise")
        .field("mmap", &C::mmap, "map the model files instead of reading them")
        .field("flash_attn", &C::flash_attn, "flash attention in the diffusion model and encoders")
        .field("offload_params_to_cpu", &C::offload_params_to_cpu, "keep weights in RAM")
        .field("keep_clip_on_cpu", &C::keep_clip_on_cpu, "run the text encoders on the CPU")
        .field("keep_vae_on_cpu", &C::keep_vae_on_cpu, "run the VAE on the CPU")
        .field("device", &C::device, "ggml device to create the context on")
        .done();
    using G = GenerateParams;
    family::params<G>(m, "GenerateParams", "One generate_image call (see cysd.Sampling).")
        .field("prompt", &G::prompt, "the prompt, LoRA tags taken out")
        .field("negative_prompt", &G::negative_prompt, "what the image should not show")
        .field("width", &G::width, "image width in pixels")
        .field("height", &G::height, "image height in pixels")
        .field("steps", &G::steps, "denoising steps")
        .field("cfg_scale", &G::cfg_scale, "classifier-free guidance scale")
        .field("sampler", &G::sampler, "sampler name; empty: the model's default")
        .field("scheduler", &G::scheduler, "scheduler name; empty: the sampler's default")
        .field("seed", &G::seed, "noise seed")
        .field("batch_count", &G::batch_count, "images per call")
        .field("clip_skip", &G::clip_skip, "CLIP layers to skip; -1: the model's default")
        .field("eta", &G::eta, "sampler noise; None: the sampler's default")
        .field("strength", &G::strength, "img2img/inpaint: how far from the image to go")
        .field("vae_tiling", &G::vae_tiling, "decode in tiles")
        .field("loras", &G::loras, "(LoRA file, weight) pairs")
        .done();

    nb::class_<Context>(m, "Context", "A loaded stable-diffusion.cpp model (sd_ctx_t).")
        .def(nb::init<const ContextParams &>(), "params"_a)
        .def("spatial_multiple", [](const Context & c) { return sd_get_spatial_multiple(c.ctx); },
             "Image sides must be multiples of this.")
        .def("default_sampler", &Context::default_sampler)
        .def("default_scheduler", &Context::default_scheduler, "sampler"_a)
        .def("generate", &Context::generate, "params"_a, "init_image"_a.none(),
             "mask_image"_a.none(), "progress"_a.none(),
             "Run generate_image; returns [(width, height, channels, bytes)].");

    nb::class_<Upscaler>(m, "Upscaler", "A loaded ESRGAN model (upscaler_ctx_t).")
        .def(nb::init<const std::string &, int, int, bool, bool, const std::string &>(), "path"_a,
             "n_threads"_a, "tile_size"_a, "offload_params_to_cpu"_a, "direct"_a, "device"_a)
        .def_prop_ro("factor", &Upscaler::factor)
        .def("upscale", &Upscaler::run, "image"_a, "factor"_a);

    m.def("sample_methods", [] {
        return names(SAMPLE_METHOD_COUNT, [](int i) { return sd_sample_method_name((sample_method_t) i); });
    });
    m.def("schedulers", [] {
        return names(SCHEDULER_COUNT, [](int i) { return sd_scheduler_name((scheduler_t) i); });
    });
    m.def("weight_types", [] {
        std::vector<std::pair<std::string, int>> out;
        for (int i = 0; i < SD_TYPE_COUNT; ++i) {
            const char * n = sd_type_name((sd_type_t) i);
            if (n && *n && std::strcmp(n, "NONE") != 0) out.emplace_back(n, i);
        }
        return out;
    });
    m.def("rng_types", [] {
        return names(RNG_TYPE_COUNT, [](int i) { return sd_rng_type_name((rng_type_t) i); });
    });
    m.def(
        "convert",
        [](const std::string & input, const std::string & vae, const std::string & output, int type,
           const std::string & rules) {
            family::call(family::error_kind::model_load, "converting " + input + " failed", [&] {
                return convert(input.c_str(), or_null(vae), output.c_str(), (sd_type_t) type,
                               or_null(rules), false);
            });
        },
        "input"_a, "vae"_a, "output"_a, "type"_a, "rules"_a);
    m.def("architecture_tensors", &cysd::architecture_tensors, "part"_a,
          "The tensors (name, shape ne0..ne3, ggml type name) stable-diffusion.cpp creates for one "
          "architecture part: 'sd1-tiny-unet', 'sdxs-512-unet', 'clip-l', 'taesd', 'esrgan-x2-1', "
          "'esrgan-x4-1' (x scale, RRDB blocks).");
    m.def("sd_version", [] { return std::string(sd_version()); });
    m.def("sd_commit", [] { return std::string(sd_commit()); });
    m.def("sd_system_info", [] { return std::string(sd_get_system_info()); });
    m.def("physical_cores", [] { return sd_get_num_physical_cores(); });
}
