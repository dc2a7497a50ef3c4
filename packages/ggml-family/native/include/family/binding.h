// Shared binding helpers of the ggml family: every package's _core includes this header and
// links src/ (log.cpp, errors.cpp, registry.cpp, rpc.cpp), so backend loading, log routing and
// error translation exist once.
//
// The binding convention every package follows:
// - An upstream call goes through family::call(): warning/error lines logged meanwhile are
//   collected (log_scope), the GIL is released, a C++ exception escaping upstream or a result
//   that means failure (null pointer, false, or what the caller's predicate says) becomes the
//   package's typed error with the lines attached.
// - A bundle of parameters is a plain struct bound with family::params<T>: named fields, each
//   documented (the generated stubs list them), a repr, and the tuple of field names that
//   ggml_family.params() checks when it fills one from Python: every field set, none misspelt.
#pragma once

#include <nanobind/nanobind.h>

#include <ggml.h>

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// The contract between a host's _core and the ggml_family Python package (the functions
// bind_ggml registers, set_error_classes among them). ggml_family refuses a _core that speaks
// another version; bump both sides together (ggml_family/_version.py: FAMILY_API).
// 2: the error classes are ggml_family's (the host's subclasses, set by register()), no longer
//    created by each _core.
#define GGML_FAMILY_API 2

namespace family {

namespace nb = nanobind;

// An upstream call failed in a way the user must act on (unreadable model, failed decode).
// `kind` picks the Python class: the host's subclass of ggml_family.ModelLoadError,
// ComputeError, BackendError or Cancelled (set_error_classes). `value`: the caller's input was
// rejected by upstream (a grammar that does not parse, ...), raised as Python's ValueError with
// upstream's own explanation attached. `cancelled`: a progress callback asked to stop.
enum class error_kind { model_load, compute, backend, value, cancelled };

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

// Collects the warning/error lines upstream logs on this thread while it lives, for a raise()
// in its scope; when it ends, whatever happened, collecting stops and the lines are dropped, so
// no later error carries stale ones.
struct log_scope {
    log_scope() { mark_log(); }
    ~log_scope() { take_log(); }
    log_scope(const log_scope &) = delete;
    log_scope & operator=(const log_scope &) = delete;
};

// What family::call counts as a failed result by default: a null pointer or false. Other
// results (counts, handles by value) are never failures unless the caller says so.
struct null_or_false {
    template <typename T>
    bool operator()(const T & r) const {
        if constexpr (std::is_pointer_v<T> || std::is_same_v<T, bool>) {
            return !r;
        } else {
            return false;
        }
    }
};

// A non-zero status code (whisper_full, llama_decode ...) is a failure, named in the message.
struct nonzero_status {
    template <typename T>
    std::string operator()(T rc) const { return rc != 0 ? " with code " + std::to_string(rc) : ""; }
};

// Runs `f`, an upstream call, the family's way and returns its result: in a log_scope, with the
// GIL released (call it with the GIL held; `f` must not touch Python objects unless it takes
// the GIL back itself). A
// C++ exception thrown by upstream raises `kind` as "what (exception text)"; a result that
// `failed` calls a failure (true, or a non-empty detail to append to `what`) raises `kind` as
// "what[detail] (lines upstream logged meanwhile)". A Python error raised by a callback inside
// `f` propagates unchanged.
template <typename F, typename Failed = null_or_false>
auto call(error_kind kind, const std::string & what, F && f, Failed failed = {}) -> decltype(f()) {
    using R = decltype(f());
    log_scope scope;
    std::optional<std::string> thrown;  // what a C++ exception escaping upstream said
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
    {
        nb::gil_scoped_release release;
        try {
            if constexpr (std::is_void_v<R>) {
                f();
                result.emplace(true);
            } else {
                result.emplace(f());
            }
        } catch (const nb::python_error &) {
            throw;  // a callback's Python exception: the caller's to see as it is
        } catch (const error &) {
            throw;
        } catch (const std::exception & e) {
            thrown = e.what();
        }
    }
    if (thrown) raise(kind, what + " (" + *thrown + ")");
    if constexpr (!std::is_void_v<R>) {
        auto verdict = failed(*result);
        if constexpr (std::is_same_v<decltype(verdict), bool>) {
            if (verdict) raise(kind, what);
        } else {
            if (!verdict.empty()) raise(kind, what + verdict);
        }
        return std::move(*result);
    }
}

// Ctrl-C during a long upstream call that runs without the GIL (a transcription, an image):
// Python only runs its SIGINT handler between bytecodes, so without this the interrupt would
// wait for the whole call. An abort callback polls it (at most every 100 ms it takes the GIL
// and runs the pending signal handlers); when a handler raised, the exception is kept in
// `error` for the caller to rethrow once upstream has stopped, and the callback says abort.
// Only the main thread runs signal handlers: from another thread it never fires.
class interrupt_poll {
public:
    bool operator()(std::exception_ptr & error) {
        const auto now = std::chrono::steady_clock::now();
        if (error || now < next_) return bool(error);
        next_ = now + std::chrono::milliseconds(100);
        nb::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() == 0) return false;
        error = std::make_exception_ptr(nb::python_error());
        return true;
    }

private:
    std::chrono::steady_clock::time_point next_{};
};

// A parameter bundle: `T` is a plain struct (default-constructible, one member per upstream
// setting); each field is bound by name with its documentation. The class gets `_fields` (the
// names, in order) and a repr listing every field; ggml_family.params(cls, **values) fills one
// from Python and refuses a missing or unknown name.
template <typename T>
class params : public nb::class_<T> {
public:
    params(nb::handle scope, const char * name, const char * doc) : nb::class_<T>(scope, name, doc) {
        this->def(nb::init<>());
    }

    template <typename D>
    params & field(const char * name, D T::*member, const char * doc) {
        this->def_rw(name, member, doc);
        names_.push_back(name);
        return *this;
    }

    // Call last: publishes the field names and the repr.
    void done() {
        nb::list names;
        for (const char * n : names_) names.append(nb::str(n));
        this->attr("_fields") = nb::tuple(names);
        this->def("__repr__", [](nb::handle self) {
            nb::object cls = nb::borrow(self.type());
            std::string out = nb::cast<std::string>(cls.attr("__name__")) + "(";
            bool first = true;
            for (nb::handle n : nb::cast<nb::tuple>(cls.attr("_fields"))) {
                out += (first ? "" : ", ") + nb::cast<std::string>(n) + "=" +
                       nb::cast<std::string>(nb::repr(self.attr(n)));
                first = false;
            }
            return out + ")";
        });
    }

private:
    std::vector<const char *> names_;
};

// Registers ggml/backend functions and the error translation on `m`. `upstream_log_set` is the
// library's own log setter (llama_log_set, whisper_log_set ...) or nullptr.
using log_setter = void (*)(ggml_log_callback, void *);
void bind_ggml(nb::module_ & m, log_setter upstream_log_set);

}  // namespace family
