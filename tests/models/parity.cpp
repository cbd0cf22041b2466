#include "models/parity.h"

#include <algorithm>
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

Tensor cosine_logits(const Tensor& images, const Tensor& texts, float scale) {
    const Tensor a = images.to_f32();
    const Tensor b = texts.to_f32();
    const int64_t n = a.dim(0), m = b.dim(0), d = a.dim(1);
    Tensor out = Tensor::zeros_f32({n, m});
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < m; ++j) {
            double dot = 0, aa = 0, bb = 0;
            for (int64_t k = 0; k < d; ++k) {
                const double x = a.f32()[i * d + k], y = b.f32()[j * d + k];
                dot += x * y;
                aa += x * x;
                bb += y * y;
            }
            out.f32()[i * m + j] = static_cast<float>(scale * dot / std::sqrt(aa * bb));
        }
    }
    return out;
}

Top1Agreement compare_top1(const Tensor& images, const Tensor& texts, const Tensor& reference_images,
                           const Tensor& reference_texts, double bound) {
    const Tensor ours = cosine_logits(images, texts);
    const Tensor reference = cosine_logits(reference_images, reference_texts);
    const int64_t classes = reference.dim(1);
    const double least_margin = 4 * bound / std::sqrt(static_cast<double>(reference_images.dim(1)));
    Top1Agreement agreement;
    for (int64_t i = 0; i < reference.dim(0); ++i) {
        const float* ref = reference.f32() + i * classes;
        const float* row = ours.f32() + i * classes;
        const int64_t best = std::max_element(ref, ref + classes) - ref;
        float second = -INFINITY;
        for (int64_t j = 0; j < classes; ++j) {
            if (j != best) second = std::max(second, ref[j]);
        }
        const double margin = ref[best] - second;
        if (classes > 1 && margin < least_margin) {
            agreement.message += "image " + std::to_string(i) + " left out: its two best classes are " + std::to_string(margin) +
                                 " apart in the reference, under " + std::to_string(least_margin) + "; ";
            continue;
        }
        ++agreement.compared;
        const int64_t ours_best = std::max_element(row, row + classes) - row;
        if (ours_best != best) {
            ++agreement.mismatches;
            agreement.message += "image " + std::to_string(i) + ": class " + std::to_string(ours_best) + " instead of " +
                                 std::to_string(best) + " (reference margin " + std::to_string(margin) + "); ";
        }
    }
    return agreement;
}

std::vector<int32_t> tokens_as_int32(const Tensor& tokens) {
    if (tokens.dtype() != DType::i64) throw std::runtime_error("token ids must be int64, got " + std::string(to_string(tokens.dtype())));
    const auto* values = static_cast<const int64_t*>(tokens.data());
    return std::vector<int32_t>(values, values + tokens.elements());
}

}  // namespace mclip::testing
