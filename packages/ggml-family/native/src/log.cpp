// ggml's log routed into Python: whole lines to the handler ggml_family installs (a logging
// logger per host), the recent warning/error lines of a call kept for its exception message.
#include "parts.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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

std::vector<std::string> collected_errors() {
    if (!t_collect) return {};
    // The error lines logged during the failed call (warnings only if there are none).
    std::vector<std::string> lines, warnings;
    for (auto & [level, line] : t_errors) {
        (level >= GGML_LOG_LEVEL_ERROR ? lines : warnings).push_back(line);
    }
    if (lines.empty()) lines = warnings;
    if (lines.size() > 4) lines.erase(lines.begin(), lines.end() - 4);
    return lines;
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

void bind_log(nb::module_ & m, log_setter upstream_log_set) {
    g_upstream_log_set = upstream_log_set;
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
}

}  // namespace family
