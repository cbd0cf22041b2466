#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace mclip::kernels {

void gelu_inplace(float* x, int64_t count) {
    constexpr float inv_sqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (int64_t i = 0; i < count; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * inv_sqrt2));
}

void relu_inplace(float* x, int64_t count) {
    for (int64_t i = 0; i < count; ++i) x[i] = std::max(x[i], 0.0f);
}

void add_inplace(float* y, const float* x, int64_t count) {
    for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

void layer_norm(const float* x, int64_t rows, int64_t width, const float* weight, const float* bias, float eps, float* y) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * width;
        float* yr = y + r * width;
        // Two passes in double for the statistics: stable for large means, and cheap at these widths.
        double mean = 0;
        for (int64_t i = 0; i < width; ++i) mean += xr[i];
        mean /= static_cast<double>(width);
        double variance = 0;
        for (int64_t i = 0; i < width; ++i) {
            const double d = xr[i] - mean;
            variance += d * d;
        }
        variance /= static_cast<double>(width);
        const float inv = static_cast<float>(1.0 / std::sqrt(variance + eps));
        const float m = static_cast<float>(mean);
        for (int64_t i = 0; i < width; ++i) yr[i] = (xr[i] - m) * inv * weight[i] + bias[i];
    }
}

void softmax_rows_inplace(float* x, int64_t rows, int64_t width) {
    for (int64_t r = 0; r < rows; ++r) {
        float* xr = x + r * width;
        float max_value = -INFINITY;
        for (int64_t i = 0; i < width; ++i) max_value = std::max(max_value, xr[i]);
        float sum = 0;
        for (int64_t i = 0; i < width; ++i) {
            xr[i] = std::exp(xr[i] - max_value);
            sum += xr[i];
        }
        const float inv = 1.0f / sum;
        for (int64_t i = 0; i < width; ++i) xr[i] *= inv;
    }
}

void multi_head_attention(const float* qkv, int length, int heads, int head_dim, bool causal, float* out) {
    const int width = heads * head_dim;
    const int64_t stride = 3 * static_cast<int64_t>(width);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
#pragma omp parallel
    {
        std::vector<float> scores(length);
        std::vector<float> query(head_dim);
#pragma omp for collapse(2) schedule(static)
        for (int h = 0; h < heads; ++h) {
            for (int i = 0; i < length; ++i) {
                // The reference scales q before the product: (q·scale)·kᵀ.
                const float* q = qkv + i * stride + h * head_dim;
                for (int d = 0; d < head_dim; ++d) query[d] = q[d] * scale;
                const int visible = causal ? i + 1 : length;
                float max_score = -INFINITY;
                for (int j = 0; j < visible; ++j) {
                    const float* k = qkv + j * stride + width + h * head_dim;
                    float s = 0;
                    for (int d = 0; d < head_dim; ++d) s += query[d] * k[d];
                    scores[j] = s;
                    max_score = std::max(max_score, s);
                }
                float sum = 0;
                for (int j = 0; j < visible; ++j) {
                    scores[j] = std::exp(scores[j] - max_score);
                    sum += scores[j];
                }
                const float inv = 1.0f / sum;
                float* o = out + static_cast<int64_t>(i) * width + h * head_dim;
                for (int d = 0; d < head_dim; ++d) o[d] = 0;
                for (int j = 0; j < visible; ++j) {
                    const float p = scores[j] * inv;
                    const float* v = qkv + j * stride + 2 * width + h * head_dim;
                    for (int d = 0; d < head_dim; ++d) o[d] += p * v[d];
                }
            }
        }
    }
}

void global_average_pool(const float* x, int channels, int64_t spatial, float* out) {
    for (int c = 0; c < channels; ++c) {
        const float* xc = x + c * spatial;
        double sum = 0;
        for (int64_t s = 0; s < spatial; ++s) sum += xc[s];
        out[c] = static_cast<float>(sum / static_cast<double>(spatial));
    }
}

void squeeze_excite_inplace(float* x, int channels, int64_t spatial, const float* w1, const float* b1, int reduced,
                            const float* w2, const float* b2) {
    std::vector<float> pooled(channels), hidden(reduced);
    global_average_pool(x, channels, spatial, pooled.data());
    for (int r = 0; r < reduced; ++r) {
        float s = b1[r];
        for (int c = 0; c < channels; ++c) s += w1[static_cast<int64_t>(r) * channels + c] * pooled[c];
        hidden[r] = std::max(s, 0.0f);
    }
    for (int c = 0; c < channels; ++c) {
        float s = b2[c];
        for (int r = 0; r < reduced; ++r) s += w2[static_cast<int64_t>(c) * reduced + r] * hidden[r];
        const float gate = 1.0f / (1.0f + std::exp(-s));
        float* xc = x + c * spatial;
        for (int64_t i = 0; i < spatial; ++i) xc[i] *= gate;
    }
}

void matmul_in_out(const float* x, int64_t rows, int64_t in, const float* p, int64_t out, float* y) {
    for (int64_t r = 0; r < rows; ++r) {
        float* yr = y + r * out;
        std::fill(yr, yr + out, 0.0f);
        for (int64_t i = 0; i < in; ++i) {
            const float xi = x[r * in + i];
            const float* pi = p + i * out;
            for (int64_t o = 0; o < out; ++o) yr[o] += xi * pi[o];
        }
    }
}

}  // namespace mclip::kernels
