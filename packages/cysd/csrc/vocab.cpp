// stable-diffusion.cpp's vocabulary loaders (src/tokenizers/vocab/vocab.h), in place of upstream's
// vocab.cpp (20 MB of arrays compiled in): the same bytes, read from the package's xz files by
// cysd._tokenizers.load when a tokenizer is built. They run inside new_sd_ctx, with the GIL
// released: take it back for the Python call. A vocabulary that is not installed throws (as
// upstream's loaders do for bad files): Context reports it as a ModelLoadError naming it.
#include <nanobind/nanobind.h>

#include <stdexcept>
#include <string>

#include "tokenizers/vocab/vocab.h"

namespace nb = nanobind;

namespace {

std::string load(const char * name) {
    nb::gil_scoped_acquire gil;
    std::string message;
    try {
        nb::bytes data = nb::cast<nb::bytes>(nb::module_::import_("cysd._tokenizers").attr("load")(name));
        return std::string(data.c_str(), data.size());
    } catch (const nb::python_error & e) {
        message = nb::str(e.value()).c_str();  // the Python exception dies here, GIL held
    } catch (const nb::cast_error &) {
        message = std::string("cysd._tokenizers.load(") + name + ") did not return bytes";
    }
    throw std::runtime_error(message);
}

}  // namespace

std::string load_clip_merges() { return load("clip_merges"); }
std::string load_qwen2_merges() { return load("qwen2_merges"); }
std::string load_mistral_merges() { return load("mistral_merges"); }
std::string load_mistral_vocab_json() { return load("mistral_vocab_json"); }
std::string load_t5_tokenizer_json() { return load("t5_tokenizer_json"); }
std::string load_umt5_tokenizer_json() { return load("umt5_tokenizer_json"); }
