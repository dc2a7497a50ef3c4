// Shared binding helpers of the ggml family: every package's _core includes this header and
// links ggml_registry.cpp, so backend loading, log routing and error translation exist once.
#pragma once

#include <nanobind/nanobind.h>

#include <ggml.h>

#include <stdexcept>
#include <string>
#include <vector>

// The contract between a host's _core and the ggml_family Python package (the functions and
// error classes bind_ggml registers). ggml_family refuses a _core that speaks another version;
// bump both sides together (ggml_family/_version.py: FAMILY_API).
#define GGML_FAMILY_API 1

namespace family {

namespace nb = nanobind;

// An upstream call failed in a way the user must act on (unreadable model, failed decode).
// Registered as <pkg>._core.<name> deriving from RuntimeError; `kind` picks the Python class.
// `value`: the caller's input was rejected by upstream (a grammar that does not parse, ...),
// raised as Python's ValueError with upstream's own explanation attached.
enum class error_kind { model_load, compute, backend, value };

struct error : std::runtime_error {
    error(error_kind k, const std::string & msg) : std::runtime_error(msg), kind(k) {}
    error_kind kind;
};

// Raise a typed error; appends the last error lines ggml/upstream logged since mark_log().
[[noreturn]] void raise(error_kind kind, const std::string & what);

// Start collecting warning/error log lines (per thread) to attach to the next raise().
void mark_log();

// The lines collected since mark_log(), and stop collecting.
std::vector<std::string> take_log();

// The log callback installed into ggml (and upstream's own *_log_set, same signature): forwards
// whole lines to the Python handler set with set_log_handler, or to stderr without one.
void log_callback(ggml_log_level level, const char * text, void * user_data);

// Registers ggml/backend functions and the error classes on `m`. `upstream_log_set` is the
// library's own log setter (llama_log_set, whisper_log_set ...) or nullptr.
using log_setter = void (*)(ggml_log_callback, void *);
void bind_ggml(nb::module_ & m, log_setter upstream_log_set);

}  // namespace family
