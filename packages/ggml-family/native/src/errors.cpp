// Typed errors: family::raise() and the translation of a family::error into the Python class
// its host registered for that kind (ggml_family.register passes the host's subclasses of
// ggml_family.errors' classes through set_error_classes).
#include "parts.h"

#include <cstring>
#include <string>
#include <vector>

namespace family {

namespace {

constexpr int k_kinds = 5;  // the members of error_kind
// The class raised for each error_kind (value: ValueError, fixed). Leaked on purpose, like the
// log handler: a ggml thread may still fail during interpreter shutdown.
nb::object * g_classes[k_kinds] = {};

PyObject * class_of(error_kind kind) {
    if (kind == error_kind::value) return PyExc_ValueError;
    nb::object * cls = g_classes[(int) kind];
    // Not registered (an extension imported without ggml_family.register): still an error.
    return cls ? cls->ptr() : PyExc_RuntimeError;
}

}  // namespace

void raise(error_kind kind, const std::string & what) {
    std::string msg = what;
    std::vector<std::string> lines = collected_errors();
    if (!lines.empty()) {
        msg += " (";
        for (size_t i = 0; i < lines.size(); ++i) {
            std::string e = lines[i];
            while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
            msg += (i ? "; " : "") + e;
        }
        msg += ")";
    }
    take_log();  // stop collecting: no later error carries these lines
    throw error(kind, msg);
}

void bind_errors(nb::module_ & m) {
    m.def("set_error_classes",
          [](nb::type_object model_load, nb::type_object compute, nb::type_object backend,
             nb::type_object cancelled) {
              const std::pair<error_kind, nb::type_object *> given[] = {
                  {error_kind::model_load, &model_load}, {error_kind::compute, &compute},
                  {error_kind::backend, &backend}, {error_kind::cancelled, &cancelled}};
              for (auto & [kind, cls] : given) {
                  if (!PyType_IsSubtype((PyTypeObject *) cls->ptr(),
                                        (PyTypeObject *) PyExc_Exception)) {
                      throw nb::type_error("error classes must derive from Exception");
                  }
                  nb::object *& slot = g_classes[(int) kind];
                  if (slot == nullptr) slot = new nb::object();
                  *slot = *cls;
              }
          },
          nb::arg("model_load"), nb::arg("compute"), nb::arg("backend"), nb::arg("cancelled"),
          "The Python classes raised for an unreadable model, a failed computation, an unusable "
          "backend and a cancelled call (ggml_family.register sets the host's own).");

    nb::register_exception_translator([](const std::exception_ptr & p, void *) {
        try {
            std::rethrow_exception(p);
        } catch (const error & e) {
            // Messages carry what upstream logged, which may quote bytes of a corrupt file:
            // undecodable ones become U+FFFD (PyErr_SetString would raise UnicodeDecodeError).
            const char * what = e.what();
            PyObject * msg = PyUnicode_DecodeUTF8(what, (Py_ssize_t) std::strlen(what), "replace");
            if (!msg) return;  // MemoryError is set
            PyErr_SetObject(class_of(e.kind), msg);
            Py_DECREF(msg);
        }
    });
}

}  // namespace family
