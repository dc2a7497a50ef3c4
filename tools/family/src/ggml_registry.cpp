// ggml backend registry, CPU-variant scoring and log routing, shared by every family package.
// Policy (which module to load, when, what to warn about) lives in the ggml_family package.
#include <family/binding.h>

#include <ggml-backend.h>

#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>
#include <mutex>

#if defined(_WIN32)
#    include <windows.h>
#else
#    include <dlfcn.h>
#endif

namespace family {

namespace {

// Python-side handler(level: int, line: str). Leaked on purpose: it must outlive every ggml
// thread that may still log during interpreter shutdown.
nb::object * g_handler = nullptr;
// Cleared (atexit) before the interpreter finalises; read without the GIL by ggml threads.
std::atomic<bool> g_active{false};
std::atomic<int> g_min_level{GGML_LOG_LEVEL_WARN};
std::mutex g_mutex;
std::string g_pending;                 // a line being assembled from GGML_LOG_LEVEL_CONT pieces
int g_pending_level = GGML_LOG_LEVEL_INFO;
log_setter g_upstream_log_set = nullptr;

thread_local bool t_collect = false;
// recent (level, line) warnings and errors, for messages
thread_local std::deque<std::pair<int, std::string>> t_errors;

// Lines logged by threads that Python does not know (ggml's own: the RPC client's dispatcher, a
// backend's workers). Such a thread must not wait for the GIL: the thread it works for may hold
// the GIL while it waits for that thread (freeing an RPC buffer waits for the dispatcher, which
// was logging a lost connection). Its lines queue here, and a pending call (run by the main
// thread between bytecodes, or by set_log_handler) hands them to the handler.
std::mutex g_foreign_mutex;
std::deque<std::pair<int, std::string>> g_foreign;
size_t g_foreign_dropped = 0;
bool g_drain_scheduled = false;
constexpr size_t k_foreign_max = 1000;

void deliver(int level, const std::string & line);

int drain_foreign(void * = nullptr) {  // with the GIL
    std::deque<std::pair<int, std::string>> lines;
    size_t dropped = 0;
    {
        std::lock_guard<std::mutex> lock(g_foreign_mutex);
        lines.swap(g_foreign);
        std::swap(dropped, g_foreign_dropped);
        g_drain_scheduled = false;
    }
    for (auto & [level, line] : lines) deliver(level, line);
    if (dropped) {
        deliver(GGML_LOG_LEVEL_WARN, std::to_string(dropped) + " log lines of ggml's threads "
                "were dropped (the interpreter was busy)");
    }
    return 0;
}

void queue_foreign(int level, std::string line) {
    std::lock_guard<std::mutex> lock(g_foreign_mutex);
    if (g_foreign.size() < k_foreign_max) {
        g_foreign.emplace_back(level, std::move(line));
    } else {
        ++g_foreign_dropped;
    }
    if (!g_drain_scheduled) g_drain_scheduled = Py_AddPendingCall(drain_foreign, nullptr) == 0;
}

void dispatch(int level, std::string line) {
    if (level >= GGML_LOG_LEVEL_WARN && level <= GGML_LOG_LEVEL_ERROR && t_collect) {
        t_errors.emplace_back(level, line);
        if (t_errors.size() > 8) t_errors.pop_front();
    }
    if (level < g_min_level.load(std::memory_order_relaxed)) return;
    if (!g_active.load() || !Py_IsInitialized()) {
        std::fputs((line + "\n").c_str(), stderr);
        return;
    }
    if (PyGILState_GetThisThreadState() == nullptr) {
        queue_foreign(level, std::move(line));
        return;
    }
    nb::gil_scoped_acquire gil;
    deliver(level, line);
}

void deliver(int level, const std::string & line) {  // with the GIL
    if (!g_active.load()) {  // the handler was removed while this thread waited for the GIL
        std::fputs((line + "\n").c_str(), stderr);
        return;
    }
    try {
        // upstream logs bytes of the files it reads: those that are not UTF-8 become U+FFFD
        PyObject * text = PyUnicode_DecodeUTF8(line.data(), (Py_ssize_t) line.size(), "replace");
        if (!text) throw nb::python_error();
        (*g_handler)(level, nb::steal<nb::str>(text));
    } catch (nb::python_error & e) {
        if (e.matches(PyExc_KeyboardInterrupt)) {
            // Ctrl-C landed in the handler, which cannot raise into ggml: trip it again, for
            // the interrupted call's own Python code to raise.
            PyErr_SetInterrupt();
            return;
        }
        e.restore();
        PyErr_WriteUnraisable(nullptr);
    }
}

struct loaded_lib {
    void * handle = nullptr;
    std::string error;
    explicit loaded_lib(const std::string & path) {
#if defined(_WIN32)
        handle = (void *) LoadLibraryA(path.c_str());
        if (!handle) error = "LoadLibrary failed with code " + std::to_string(GetLastError());
#else
        handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) error = dlerror();
#endif
    }
    void * sym(const char * name) const {
#if defined(_WIN32)
        return (void *) GetProcAddress((HMODULE) handle, name);
#else
        return dlsym(handle, name);
#endif
    }
    ~loaded_lib() {
        if (!handle) return;
#if defined(_WIN32)
        FreeLibrary((HMODULE) handle);
#else
        dlclose(handle);
#endif
    }
};

const char * dev_type_name(enum ggml_backend_dev_type t) {
    switch (t) {
        case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
        case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
        case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
        case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
        default: return "unknown";
    }
}

// An RPC server's device: asking for its memory is a round trip to the server (or a connection
// attempt to one that went away: ggml's registry cannot forget a server).
bool is_remote(ggml_backend_dev_t dev) {
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    return reg && std::string(ggml_backend_reg_name(reg)).rfind("RPC", 0) == 0;
}

nb::dict describe_device(ggml_backend_dev_t dev) {
    size_t free = 0, total = 0;
    const bool remote = is_remote(dev);
    if (!remote) ggml_backend_dev_memory(dev, &free, &total);
    nb::dict d;
    d["remote"] = remote;  // memory not asked (0): device_memory() does
    d["name"] = ggml_backend_dev_name(dev);
    d["description"] = ggml_backend_dev_description(dev);
    d["type"] = dev_type_name(ggml_backend_dev_type(dev));
    d["memory_free"] = free;
    d["memory_total"] = total;
    return d;
}

}  // namespace

void mark_log() {
    t_collect = true;
    t_errors.clear();
}

std::vector<std::string> take_log() {
    std::vector<std::string> out;
    for (auto & [level, line] : t_errors) out.push_back(line);
    t_collect = false;
    t_errors.clear();
    return out;
}

void raise(error_kind kind, const std::string & what) {
    // Attach the error lines logged during the failed call (warnings only if there are none).
    std::vector<std::string> lines, warnings;
    for (auto & [level, line] : t_errors) {
        (level >= GGML_LOG_LEVEL_ERROR ? lines : warnings).push_back(line);
    }
    if (lines.empty()) lines = warnings;
    if (lines.size() > 4) lines.erase(lines.begin(), lines.end() - 4);
    std::string msg = what;
    if (t_collect && !lines.empty()) {
        msg += " (";
        for (size_t i = 0; i < lines.size(); ++i) {
            std::string e = lines[i];
            while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
            msg += (i ? "; " : "") + e;
        }
        msg += ")";
    }
    t_collect = false;
    t_errors.clear();
    throw error(kind, msg);
}

void log_callback(ggml_log_level level, const char * text, void *) {
    // ggml sends a line in pieces (GGML_LOG_LEVEL_CONT); Python gets whole lines.
    std::vector<std::pair<int, std::string>> lines;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (level != GGML_LOG_LEVEL_CONT) {
            if (!g_pending.empty()) lines.emplace_back(g_pending_level, std::move(g_pending));
            g_pending.clear();
            g_pending_level = level;
        }
        g_pending += text ? text : "";
        if (!g_pending.empty() && g_pending.back() == '\n') {
            g_pending.pop_back();
            lines.emplace_back(g_pending_level, std::move(g_pending));
            g_pending.clear();
        }
    }
    for (auto & [lvl, line] : lines) dispatch(lvl, std::move(line));
}

// An entry point of the loaded RPC backend module.
static void * rpc_proc(const char * name) {
    ggml_backend_reg_t rpc = ggml_backend_reg_by_name("RPC");
    if (!rpc) raise(error_kind::backend, "the RPC backend module is not loaded");
    void * fn = ggml_backend_reg_get_proc_address(rpc, name);
    if (!fn) raise(error_kind::backend, std::string("the RPC backend has no ") + name);
    return fn;
}

void bind_ggml(nb::module_ & m, log_setter upstream_log_set) {
    g_upstream_log_set = upstream_log_set;

    const std::string mod_name = nb::borrow<nb::str>(m.attr("__name__")).c_str();
    auto make_error = [&](const char * name, const char * doc) {
        nb::object cls = nb::steal(PyErr_NewExceptionWithDoc(
            (mod_name + "." + name).c_str(), doc, PyExc_RuntimeError, nullptr));
        m.attr(name) = cls;
        return cls;
    };
    static nb::object model_load_error =
        make_error("ModelLoadError", "A model file could not be read or is not a valid model.");
    static nb::object compute_error =
        make_error("ComputeError", "A compute call (decode, encode, sampling) failed.");
    static nb::object backend_error =
        make_error("BackendError", "A ggml backend could not be loaded or used.");
    nb::register_exception_translator([](const std::exception_ptr & p, void *) {
        try {
            std::rethrow_exception(p);
        } catch (const error & e) {
            // Messages carry what upstream logged, which may quote bytes of a corrupt file:
            // undecodable ones become U+FFFD (PyErr_SetString would raise UnicodeDecodeError).
            auto set = [](PyObject * type, const char * what) {
                PyObject * msg = PyUnicode_DecodeUTF8(what, (Py_ssize_t) std::strlen(what),
                                                      "replace");
                if (!msg) return;  // MemoryError is set
                PyErr_SetObject(type, msg);
                Py_DECREF(msg);
            };
            if (e.kind == error_kind::value) {
                set(PyExc_ValueError, e.what());
                return;
            }
            nb::object & cls = e.kind == error_kind::model_load ? model_load_error
                               : e.kind == error_kind::compute  ? compute_error
                                                                : backend_error;
            set(cls.ptr(), e.what());
        }
    });

    m.def("ggml_version", [] { return std::string(GGML_FAMILY_GGML_VERSION); },
          "Version of the family ggml this package was built with.");
    m.def("fingerprint", [] { return std::string(GGML_FAMILY_FINGERPRINT); },
          "The ggml ABI fingerprint of this build (backend modules must carry the same one).");
    m.def("backend_api_version", [] { return GGML_FAMILY_BACKEND_API; },
          "ggml's GGML_BACKEND_API_VERSION at build time.");
    m.def("family_api", [] { return GGML_FAMILY_API; },
          "The ggml_family API version this extension speaks (GGML_FAMILY_API).");

    m.def("set_log_handler",
          [](nb::object handler, int min_level) {
              drain_foreign();  // to the handler they were logged for
              g_active.store(false);
              g_min_level.store(min_level);
              if (g_handler == nullptr) g_handler = new nb::object();
              *g_handler = handler;
              g_active.store(!handler.is_none());
              ggml_log_set(log_callback, nullptr);
              if (g_upstream_log_set) g_upstream_log_set(log_callback, nullptr);
          },
          nb::arg("handler").none(), nb::arg("min_level") = (int) GGML_LOG_LEVEL_WARN,
          "Route ggml's (and the library's) log lines to handler(level, line), or to stderr "
          "with None. Lines below min_level are dropped before reaching Python.");

    m.def("module_score",
          [](const std::string & path) -> std::pair<int, std::string> {
              loaded_lib lib(path);
              if (!lib.handle) return {-1, lib.error};
              auto fn = (int (*)(void)) lib.sym("ggml_backend_score");
              if (!fn) return {-1, "no ggml_backend_score in module"};
              return {fn(), ""};
          },
          nb::arg("path"), nb::call_guard<nb::gil_scoped_release>(),
          "Open a backend module, ask its ggml_backend_score (0: cannot run on this machine) "
          "and close it again. Returns (score, error); score is -1 when it cannot be opened.");

    m.def("backend_load",
          [](const std::string & path) -> std::pair<std::string, std::vector<std::string>> {
              mark_log();
              // Our own dlopen first, for a useful message (ggml only logs the failure). It
              // stays open until ggml holds its own reference, so the module is mapped once:
              // a GPU module registers its kernels with its runtime from static constructors,
              // and an unmap/remap in between makes the runtime unregister and register them
              // all again (or keep entries into the old mapping, if it does not clean up).
              loaded_lib probe(path);
              if (!probe.handle) {
                  raise(error_kind::backend, "cannot load backend module " + path + ": " +
                                                 probe.error);
              }
              ggml_backend_reg_t reg = ggml_backend_load(path.c_str());
              if (!reg) raise(error_kind::backend, "ggml refused backend module " + path);
              return {ggml_backend_reg_name(reg), take_log()};
          },
          nb::arg("path"), nb::call_guard<nb::gil_scoped_release>(),
          "Load a backend module by path into ggml's registry. Returns the backend's name and "
          "the warning/error lines ggml logged while loading it (e.g. a missing driver).");

    m.def("backend_registered",
          [](const std::string & name) { return ggml_backend_reg_by_name(name.c_str()) != nullptr; },
          nb::arg("name"), "Whether a backend with this name is in the registry.");

    m.def("backends",
          [] {
              nb::typed<nb::list, nb::typed<nb::dict, nb::str, nb::any>> out;
              for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
                  ggml_backend_reg_t reg = ggml_backend_reg_get(i);
                  nb::dict r;
                  r["name"] = ggml_backend_reg_name(reg);
                  nb::list devs;
                  for (size_t j = 0; j < ggml_backend_reg_dev_count(reg); ++j) {
                      devs.append(describe_device(ggml_backend_reg_dev_get(reg, j)));
                  }
                  r["devices"] = devs;
                  nb::list feats;
                  using get_features_t = ggml_backend_feature * (*)(ggml_backend_reg_t);
                  auto get_features = (get_features_t) ggml_backend_reg_get_proc_address(
                      reg, "ggml_backend_get_features");
                  if (get_features) {
                      for (ggml_backend_feature * f = get_features(reg); f && f->name; ++f) {
                          feats.append(nb::make_tuple(f->name, f->value));
                      }
                  }
                  r["features"] = feats;
                  out.append(r);
              }
              return out;
          },
          "Registered backends: name, devices (name, description, type, memory) and features.");

    m.def("device_memory",
          [](const std::string & name) -> std::pair<size_t, size_t> {
              ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
              if (!dev) raise(error_kind::value, "no ggml device named " + name);
              size_t free = 0, total = 0;
              call(error_kind::backend, "cannot ask device " + name + " for its memory",
                   [&] { ggml_backend_dev_memory(dev, &free, &total); });
              return {free, total};
          },
          nb::arg("name"), "(free, total) bytes of a device's memory (an RPC server's: asked).");

    // ggml's RPC backend (a module like any other): its entry points are found by name, so
    // nothing here links it.
    m.def("rpc_add_server",
          [](const std::string & endpoint) -> std::vector<std::string> {
              using add_server_t = ggml_backend_reg_t (*)(const char *);
              auto add = (add_server_t) rpc_proc("ggml_backend_rpc_add_server");
              ggml_backend_reg_t reg = call(error_kind::backend,
                                            "cannot use the RPC server at " + endpoint,
                                            [&] { return add(endpoint.c_str()); });
              static std::mutex mutex;
              static std::vector<ggml_backend_reg_t> registered;
              {
                  std::lock_guard<std::mutex> lock(mutex);
                  if (std::find(registered.begin(), registered.end(), reg) == registered.end()) {
                      ggml_backend_register(reg);  // its devices join the registry, once
                      registered.push_back(reg);
                  }
              }
              std::vector<std::string> names;
              for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); ++i) {
                  names.emplace_back(ggml_backend_dev_name(ggml_backend_reg_dev_get(reg, i)));
              }
              return names;
          },
          nb::arg("endpoint"),
          "Connect to an RPC server (host:port) and register its devices; returns their names. "
          "BackendError when it cannot be reached or speaks another protocol version.");

    m.def("rpc_start_server",
          [](const std::string & endpoint, const std::string & cache_dir, size_t n_threads,
             const std::vector<std::string> & devices) {
              using start_server_t = void (*)(const char *, const char *, size_t, size_t,
                                              ggml_backend_dev_t *);
              auto start = (start_server_t) rpc_proc("ggml_backend_rpc_start_server");
              std::vector<ggml_backend_dev_t> devs;
              for (const auto & name : devices) {
                  ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
                  if (!dev) raise(error_kind::value, "no ggml device named " + name);
                  devs.push_back(dev);
              }
              call(error_kind::backend, "the RPC server at " + endpoint + " stopped", [&] {
                  start(endpoint.c_str(), cache_dir.empty() ? nullptr : cache_dir.c_str(),
                        n_threads, devs.size(), devs.data());
                  return false;  // it only returns when it could not listen
              }, [](bool) { return true; });
          },
          nb::arg("endpoint"), nb::arg("cache_dir"), nb::arg("n_threads"), nb::arg("devices"),
          "Serve these devices over ggml's RPC protocol at endpoint (host:port), the tensor "
          "cache in cache_dir (empty: none). Blocks (without the GIL) while it serves; raises "
          "BackendError when it cannot listen.");
}

}  // namespace family
