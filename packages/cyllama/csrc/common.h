// Shared declarations of the cyllama._core extension: one header for every translation unit
// (one definition of each nanobind type caster), plus the bind_<concept> entry points.
#pragma once

#include <family/binding.h>
#include <llama.h>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nb = nanobind;
using namespace nb::literals;

namespace cyllama {

// Owns a llama_model; the Context keeps a reference so the model outlives it.
struct Model {
    llama_model * ptr = nullptr;
    std::string path;

    Model(const std::string & path, int n_gpu_layers, bool use_mmap, bool vocab_only,
          const std::optional<std::vector<std::string>> & devices = std::nullopt,
          bool repack = true);
    ~Model();
    Model(const Model &) = delete;
    Model & operator=(const Model &) = delete;

    const llama_vocab * vocab() const { return llama_model_get_vocab(ptr); }
};

// A LoRA adapter loaded for a Model (keeps the model alive: adapters live in its tensors).
struct LoraAdapter {
    nb::object model_ref;
    llama_adapter_lora * ptr = nullptr;
    std::string path;

    LoraAdapter(nb::object model, const std::string & path);
    ~LoraAdapter() { llama_adapter_lora_free(ptr); }
    LoraAdapter(const LoraAdapter &) = delete;
    LoraAdapter & operator=(const LoraAdapter &) = delete;
};

void bind_model(nb::module_ & m);
void bind_context(nb::module_ & m);
void bind_sampler(nb::module_ & m);
void bind_embedder(nb::module_ & m);

}  // namespace cyllama
