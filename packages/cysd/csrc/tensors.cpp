// Builds stable-diffusion.cpp's own blocks (no backend, no data: a no_alloc ggml context) and
// lists their parameters, so that model files for tests match sd.cpp exactly.
#include "tensors.h"

// The order of stable-diffusion.cpp's own translation unit (tae.hpp needs vae.hpp's VAE).
// tae.hpp defines two non-inline functions, also compiled into stable-diffusion.cpp.o: this
// translation unit's copies get other names.
#define patchify cysd_tensors_patchify
#define unpatchify cysd_tensors_unpatchify
#include "ggml_extend.hpp"
#include "model.h"
#include "auto_encoder_kl.hpp"
#include "conditioner.hpp"
#include "diffusion_model.hpp"
#include "esrgan.hpp"
#include "tae.hpp"
#include "vae.hpp"

#include <map>
#include <memory>
#include <stdexcept>

namespace cysd {

std::vector<tensor_info> architecture_tensors(const std::string & part) {
    ggml_init_params params{MAX_PARAMS_TENSOR_NUM * ggml_tensor_overhead(), nullptr, true};
    std::unique_ptr<ggml_context, decltype(&ggml_free)> ctx(ggml_init(params), ggml_free);
    std::map<std::string, ggml_tensor *> tensors;
    // Blocks must outlive the listing (their tensors live in ctx, their names in the map).
    std::shared_ptr<GGMLBlock> block;  // shared_ptr: deletes through the right type
    std::string prefix;
    if (part == "sd1-tiny-unet" || part == "sdxs-512-unet") {
        prefix = "model.diffusion_model";
        block = std::make_shared<UnetModelBlock>(
            part == "sd1-tiny-unet" ? VERSION_SD1_TINY_UNET : VERSION_SDXS_512_DS);
    } else if (part == "clip-l") {
        prefix = "cond_stage_model.transformer.text_model";
        block = std::make_shared<CLIPTextModel>(OPENAI_CLIP_VIT_L_14, true, false, false);
    } else if (part == "taesd") {
        block = std::make_shared<TAESD>(false, VERSION_SD1);  // encoder and decoder
    } else if (part == "esrgan-x2-1" || part == "esrgan-x4-1") {
        block = std::make_shared<RRDBNet>(part == "esrgan-x2-1" ? 2 : 4, 1, 3, 3, 64, 32);
    } else {
        throw std::invalid_argument("unknown architecture part '" + part + "'");
    }
    block->init(ctx.get(), {}, prefix);
    block->get_param_tensors(tensors, prefix);
    std::vector<tensor_info> out;
    for (const auto & [name, t] : tensors) {
        out.emplace_back(name, std::array<int64_t, 4>{t->ne[0], t->ne[1], t->ne[2], t->ne[3]},
                         ggml_type_name(t->type));
    }
    return out;
}

}  // namespace cysd
