#include "models/parity.h"

#include <cmath>
#include <stdexcept>

namespace mclip::testing {

std::vector<double> relative_error_per_row(const Tensor& ours, const Tensor& reference) {
    const Tensor a = ours.to_f32();
    const Tensor b = reference.to_f32();
    if (a.elements() != b.elements() || a.dim(0) != b.dim(0)) {
        throw std::runtime_error("shape mismatch: " + shape_to_string(a.shape()) + " vs " + shape_to_string(b.shape()));
    }
    const int64_t rows = a.dim(0);
    const int64_t width = a.elements() / rows;
    std::vector<double> errors;
    for (int64_t r = 0; r < rows; ++r) {
        double diff = 0, norm = 0;
        for (int64_t i = 0; i < width; ++i) {
            const double d = static_cast<double>(a.f32()[r * width + i]) - b.f32()[r * width + i];
            diff += d * d;
            norm += static_cast<double>(b.f32()[r * width + i]) * b.f32()[r * width + i];
        }
        errors.push_back(std::sqrt(diff) / std::sqrt(norm));
    }
    return errors;
}

double max_relative_error(const Tensor& ours, const Tensor& reference) {
    double worst = 0;
    for (double e : relative_error_per_row(ours, reference)) worst = std::max(worst, std::isnan(e) ? INFINITY : e);
    return worst;
}

std::vector<int32_t> tokens_as_int32(const Tensor& tokens) {
    if (tokens.dtype() != DType::i64) throw std::runtime_error("token ids must be int64, got " + std::string(to_string(tokens.dtype())));
    const auto* values = static_cast<const int64_t*>(tokens.data());
    return std::vector<int32_t>(values, values + tokens.elements());
}

}  // namespace mclip::testing
