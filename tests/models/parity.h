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

// The fixtures' int64 token ids [rows, context] as the int32 ids the text encoders take.
std::vector<int32_t> tokens_as_int32(const Tensor& tokens);

}  // namespace mclip::testing
