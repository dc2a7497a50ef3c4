// cyllama._core: thin RAII owners over llama.cpp's C API. Policy lives in the Python layer.
#include "common.h"

NB_MODULE(_core, m) {
    m.doc() = "Low-level bindings of llama.cpp on the family ggml (private: use cyllama).";
    family::bind_ggml(m, llama_log_set);
    cyllama::bind_model(m);
    cyllama::bind_context(m);
    cyllama::bind_sampler(m);
    cyllama::bind_embedder(m);
    m.def("llama_system_info", [] { return std::string(llama_print_system_info()); },
          "llama.cpp's one-line summary of the CPU features the loaded CPU backend uses.");
}
