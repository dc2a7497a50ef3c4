// cysd._core: stable-diffusion.cpp on the family ggml. RAII owners of sd_ctx_t and
// upscaler_ctx_t; generation with the GIL released (the progress callback re-acquires it) and
// cancellation through the abort callback our patch adds. Images cross as (width, height,
// channels, bytes). Policy (validation, PIL/NumPy conversion, LoRA prompt syntax) is Python's.
#include <family/binding.h>
#include <stable-diffusion.h>

#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
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
using options_dict = nb::typed<nb::dict, nb::str, nb::any>;
using image_arg = nb::typed<nb::tuple, int, int, int, nb::bytes>;

template <typename T>
T get(const nb::dict & d, const char * key, T fallback) {
    return d.contains(key) && !d[key].is_none() ? nb::cast<T>(d[key]) : fallback;
}

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
    std::exception_ptr error;  // raised by the progress callback
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

bool on_abort(void * data) { return static_cast<run_state *>(data)->cancelled.load(); }

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

struct cancelled_error : std::runtime_error {
    using std::runtime_error::runtime_error;
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

std::string str_or_empty(const nb::dict & d, const char * key) { return get<std::string>(d, key, ""); }

// Runs `f` with the GIL released. Returns what a C++ exception thrown by upstream said (corrupt
// files can make its loaders throw: absurd sizes, bad JSON), or "".
template <typename F>
std::string released(F && f) {
    nb::gil_scoped_release release;
    try {
        f();
    } catch (const std::exception & e) {
        return e.what();
    }
    return {};
}

std::string because(const std::string & thrown) { return thrown.empty() ? "" : " (" + thrown + ")"; }

// sd.cpp picks the device of a new context or upscaler from a process global (our patch 0005):
// set it, create, restore the default, all under one lock, taken with the GIL released (the
// vocabulary loaders take the GIL back inside).
std::mutex g_device_mutex;

template <typename F>
std::string created_on(const std::string & device, F && f) {
    return released([&] {
        std::lock_guard<std::mutex> lock(g_device_mutex);
        struct restore {
            ~restore() { sd_set_main_device(nullptr); }
        } on_exit;
        sd_set_main_device(device.c_str());
        f();
    });
}

void free_images(sd_image_t * images, int count) {
    if (!images) return;
    for (int i = 0; i < count; ++i) std::free(images[i].data);
    std::free(images);
}

struct Context {
    sd_ctx_t * ctx = nullptr;

    explicit Context(const options_dict & o) {
        const std::string model = str_or_empty(o, "model"), clip_l = str_or_empty(o, "clip_l"),
                          clip_g = str_or_empty(o, "clip_g"), t5xxl = str_or_empty(o, "t5xxl"),
                          diffusion = str_or_empty(o, "diffusion_model"),
                          vae = str_or_empty(o, "vae"), taesd = str_or_empty(o, "taesd");
        sd_ctx_params_t p;
        sd_ctx_params_init(&p);
        p.model_path = model.c_str();
        p.clip_l_path = clip_l.c_str();
        p.clip_g_path = clip_g.c_str();
        p.t5xxl_path = t5xxl.c_str();
        p.diffusion_model_path = diffusion.c_str();
        p.vae_path = vae.c_str();
        p.taesd_path = taesd.c_str();
        p.vae_decode_only = get<bool>(o, "vae_decode_only", false);
        p.free_params_immediately = false;  // a context generates many times
        p.n_threads = get<int>(o, "n_threads", p.n_threads);
        p.wtype = (sd_type_t) get<int>(o, "wtype", (int) SD_TYPE_COUNT);
        p.rng_type = (rng_type_t) get<int>(o, "rng", (int) CUDA_RNG);
        p.enable_mmap = get<bool>(o, "mmap", false);
        p.flash_attn = get<bool>(o, "flash_attn", false);
        p.diffusion_flash_attn = p.flash_attn;
        p.offload_params_to_cpu = get<bool>(o, "offload_params_to_cpu", false);
        p.keep_clip_on_cpu = get<bool>(o, "keep_clip_on_cpu", false);
        p.keep_vae_on_cpu = get<bool>(o, "keep_vae_on_cpu", false);
        p.vae_conv_direct = get<bool>(o, "vae_conv_direct", false);
        p.diffusion_conv_direct = get<bool>(o, "diffusion_conv_direct", false);
        family::mark_log();
        const std::string thrown = created_on(str_or_empty(o, "device"), [&] { ctx = new_sd_ctx(&p); });
        if (!ctx) {
            family::raise(family::error_kind::model_load,
                          "stable-diffusion.cpp could not load the model" + because(thrown));
        }
        family::take_log();
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
    std::vector<image_tuple> generate(const options_dict & o, nb::object progress) {
        const std::string prompt = str_or_empty(o, "prompt"), negative = str_or_empty(o, "negative_prompt");
        sd_img_gen_params_t p;
        sd_img_gen_params_init(&p);
        p.prompt = prompt.c_str();
        p.negative_prompt = negative.c_str();
        p.clip_skip = get<int>(o, "clip_skip", -1);
        p.width = get<int>(o, "width", 512);
        p.height = get<int>(o, "height", 512);
        p.strength = get<float>(o, "strength", 0.75f);
        p.seed = get<int64_t>(o, "seed", 42);
        p.batch_count = get<int>(o, "batch_count", 1);
        sd_sample_params_t & s = p.sample_params;
        s.sample_steps = get<int>(o, "steps", 20);
        s.guidance.txt_cfg = get<float>(o, "cfg_scale", 7.0f);
        if (o.contains("eta") && !o["eta"].is_none()) s.eta = nb::cast<float>(o["eta"]);
        const std::string sampler = str_or_empty(o, "sampler"), scheduler = str_or_empty(o, "scheduler");
        s.sample_method = sampler.empty() ? SAMPLE_METHOD_COUNT : str_to_sample_method(sampler.c_str());
        s.scheduler = scheduler.empty() ? SCHEDULER_COUNT : str_to_scheduler(scheduler.c_str());
        p.vae_tiling_params.enabled = get<bool>(o, "vae_tiling", false);
        nb::object init = o.contains("init_image") ? nb::object(o["init_image"]) : nb::none();
        nb::object mask = o.contains("mask_image") ? nb::object(o["mask_image"]) : nb::none();
        p.init_image = as_image(init);
        p.mask_image = as_image(mask);
        std::vector<std::string> lora_paths;
        std::vector<sd_lora_t> loras;
        if (o.contains("loras")) {
            for (auto item : nb::cast<nb::list>(o["loras"])) {
                auto t = nb::cast<nb::tuple>(item);
                lora_paths.push_back(nb::cast<std::string>(t[0]));
                loras.push_back(sd_lora_t{false, nb::cast<float>(t[1]), nullptr});
            }
            for (size_t i = 0; i < loras.size(); ++i) loras[i].path = lora_paths[i].c_str();
        }
        p.loras = loras.data();
        p.lora_count = (uint32_t) loras.size();

        run_state st;
        st.progress = progress;
        sd_image_t * images = nullptr;
        family::mark_log();
        const std::string thrown = released([&] {
            run_guard guard(st);
            images = generate_image(ctx, &p);
        });
        if (st.cancelled) {  // by the callback's answer, or by an exception it raised
            free_images(images, p.batch_count);
            family::take_log();
            if (st.error) std::rethrow_exception(st.error);
            throw cancelled_error("generation cancelled by the progress callback after " +
                                  std::to_string(st.calls) + " step(s)");
        }
        if (!images) {
            family::raise(family::error_kind::compute,
                          "stable-diffusion.cpp failed to generate an image" + because(thrown));
        }
        std::vector<image_tuple> out;
        for (int i = 0; i < p.batch_count; ++i) {
            if (images[i].data) out.push_back(take_image(images[i]));
        }
        std::free(images);
        family::take_log();
        return out;
    }
};

struct Upscaler {
    upscaler_ctx_t * ctx = nullptr;

    Upscaler(const std::string & path, int n_threads, int tile_size, bool offload, bool direct,
             const std::string & device) {
        family::mark_log();
        const std::string thrown = created_on(
            device, [&] { ctx = new_upscaler_ctx(path.c_str(), offload, direct, n_threads, tile_size); });
        if (!ctx) {
            family::raise(family::error_kind::model_load,
                          "stable-diffusion.cpp could not load the ESRGAN model " + path +
                              because(thrown));
        }
        family::take_log();
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
        family::mark_log();
        {
            nb::gil_scoped_release release;
            run_guard guard(st);
            out = upscale(ctx, in, factor);
        }
        if (!out.data) family::raise(family::error_kind::compute, "ESRGAN upscaling failed");
        family::take_log();
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

    static nb::exception<cancelled_error> cancelled(m, "Cancelled", PyExc_RuntimeError);
    nb::register_exception_translator([](const std::exception_ptr & p, void *) {
        try {
            std::rethrow_exception(p);
        } catch (const cancelled_error & e) {
            PyErr_SetString(cancelled.ptr(), e.what());
        }
    });

    nb::class_<Context>(m, "Context", "A loaded stable-diffusion.cpp model (sd_ctx_t).")
        .def(nb::init<const options_dict &>(), "options"_a)
        .def("spatial_multiple", [](const Context & c) { return sd_get_spatial_multiple(c.ctx); },
             "Image sides must be multiples of this.")
        .def("default_sampler", &Context::default_sampler)
        .def("default_scheduler", &Context::default_scheduler, "sampler"_a)
        .def("generate", &Context::generate, "options"_a, "progress"_a.none(),
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
            family::mark_log();
            bool ok;
            {
                nb::gil_scoped_release release;
                ok = convert(input.c_str(), vae.empty() ? nullptr : vae.c_str(), output.c_str(),
                             (sd_type_t) type, rules.empty() ? nullptr : rules.c_str(), false);
            }
            if (!ok) family::raise(family::error_kind::model_load, "converting " + input + " failed");
            family::take_log();
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
