// The parameter tensors stable-diffusion.cpp creates for an architecture (names, shapes, types):
// what a model file must hold. The test fixtures write random-weight models from this list.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace cysd {

using tensor_info = std::tuple<std::string, std::array<int64_t, 4>, std::string>;

std::vector<tensor_info> architecture_tensors(const std::string & part);

}  // namespace cysd
