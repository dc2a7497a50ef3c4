// ggml's backend registry seen from Python: CPU-module scoring, loading backend modules by
// path, the registered backends and devices, and the build's versions. bind_ggml registers this
// and the other parts (log.cpp, errors.cpp, rpc.cpp) on a host's _core. Policy (which module
// to load, when, what to warn about) lives in the ggml_family package.
#include "parts.h"

#include <ggml-backend.h>

#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>
#include <vector>

#if defined(_WIN32)
#    include <windows.h>
#else
#    include <dlfcn.h>
#endif

namespace family {

namespace {

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

void bind_registry(nb::module_ & m) {
    m.def("ggml_version", [] { return std::string(GGML_FAMILY_GGML_VERSION); },
          "Version of the family ggml this package was built with.");
    m.def("fingerprint", [] { return std::string(GGML_FAMILY_FINGERPRINT); },
          "The ggml ABI fingerprint of this build (backend modules must carry the same one).");
    m.def("backend_api_version", [] { return GGML_FAMILY_BACKEND_API; },
          "ggml's GGML_BACKEND_API_VERSION at build time.");
    m.def("family_api", [] { return GGML_FAMILY_API; },
          "The ggml_family API version this extension speaks (GGML_FAMILY_API).");

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
}

void bind_ggml(nb::module_ & m, log_setter upstream_log_set) {
    bind_log(m, upstream_log_set);
    bind_errors(m);
    bind_registry(m);
    bind_rpc(m);
}

}  // namespace family
