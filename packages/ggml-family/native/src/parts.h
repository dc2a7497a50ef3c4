// What the parts of the family's registry binding (log.cpp, errors.cpp, registry.cpp, rpc.cpp)
// share with each other; not for the hosts, which include <family/binding.h> only.
#pragma once

#include <family/binding.h>

#include <string>
#include <vector>

namespace family {

// The warning/error lines collected since mark_log() that a raise() attaches (the last
// error lines, else the last warnings); empty when nothing is being collected.
std::vector<std::string> collected_errors();

// Each registers its functions on a host's _core (bind_ggml calls them in this order).
void bind_log(nb::module_ & m, log_setter upstream_log_set);
void bind_errors(nb::module_ & m);
void bind_registry(nb::module_ & m);
void bind_rpc(nb::module_ & m);

}  // namespace family
