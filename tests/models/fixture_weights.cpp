#include "models/fixture_weights.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>

namespace mclip::testing {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

}  // namespace

float fixture_weight_value(uint64_t seed, uint64_t t, uint64_t j, double lo, double hi) {
    const uint64_t key = mix(seed * kGolden + t + 1);
    const double u = static_cast<double>(mix(key + (j + 1) * kGolden) >> 40) / 16777216.0;
    return static_cast<float>(lo + (hi - lo) * u);
}

TensorMap generate_fixture_checkpoint(const std::filesystem::path& weights_json) {
    std::ifstream in(weights_json);
    if (!in) throw std::runtime_error("cannot open " + weights_json.string());
    const nlohmann::json spec = nlohmann::json::parse(in);
    const uint64_t seed = spec.at("seed").get<uint64_t>();
    TensorMap tensors;
    const auto& list = spec.at("tensors");
    for (uint64_t t = 0; t < list.size(); ++t) {
        const auto& entry = list[t];
        const Shape shape = entry.at("shape").get<Shape>();
        const std::string dtype = entry.at("dtype").get<std::string>();
        if (dtype == "I64") {
            Tensor tensor = Tensor::zeros(DType::i64, shape);
            const int64_t fill = entry.at("fill").get<int64_t>();
            for (int64_t i = 0; i < tensor.elements(); ++i) static_cast<int64_t*>(tensor.data())[i] = fill;
            tensors[entry.at("name").get<std::string>()] = tensor;
            continue;
        }
        if (dtype != "F32") throw std::runtime_error("unexpected dtype " + dtype + " in " + weights_json.string());
        const double lo = entry.at("lo").get<double>(), hi = entry.at("hi").get<double>();
        Tensor tensor = Tensor::zeros_f32(shape);
        float* data = tensor.f32();
        const int64_t n = tensor.elements();
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < n; ++j) data[j] = fixture_weight_value(seed, t, static_cast<uint64_t>(j), lo, hi);
        tensors[entry.at("name").get<std::string>()] = tensor;
    }
    return tensors;
}

}  // namespace mclip::testing
