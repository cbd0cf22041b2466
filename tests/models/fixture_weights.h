// Rebuilds the reference checkpoints from ../shared/fixtures/<model>/weights.json exactly as the
// fixtures README specifies (a splitmix64 counter generator per tensor), so the tests can run the
// real full-size models without storing their weights.
#pragma once

#include <filesystem>

#include "tensor/tensor.h"

namespace mclip::testing {

// The training-form checkpoint (same names, shapes and values as the reference's state_dict).
TensorMap generate_fixture_checkpoint(const std::filesystem::path& weights_json);

// The value of element j of tensor index t for a seed (exposed for a known-value test).
float fixture_weight_value(uint64_t seed, uint64_t t, uint64_t j, double lo, double hi);

}  // namespace mclip::testing
