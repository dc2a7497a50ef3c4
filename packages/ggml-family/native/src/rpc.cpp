// ggml's RPC backend, a module like any other: connecting to servers (their devices join the
// registry) and serving this machine's devices. Its entry points are found by name, so nothing
// here links it.
#include "parts.h"

#include <ggml-backend.h>

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

namespace family {

namespace {

// An entry point of the loaded RPC backend module.
void * rpc_proc(const char * name) {
    ggml_backend_reg_t rpc = ggml_backend_reg_by_name("RPC");
    if (!rpc) raise(error_kind::backend, "the RPC backend module is not loaded");
    void * fn = ggml_backend_reg_get_proc_address(rpc, name);
    if (!fn) raise(error_kind::backend, std::string("the RPC backend has no ") + name);
    return fn;
}

}  // namespace

void bind_rpc(nb::module_ & m) {
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
