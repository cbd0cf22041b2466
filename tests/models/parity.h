// Comparison helpers for parity tests against the reference fixtures.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mclip::testing {

// ||ours − ref|| / ||ref|| for each row of two [rows, ...] tensors (the first dimension is the row).
std::vector<double> relative_error_per_row(const Tensor& ours, const Tensor& reference);
// The largest of those.
double max_relative_error(const Tensor& ours, const Tensor& reference);

}  // namespace mclip::testing
