// The reference backend: direct loops for depthwise convolutions, im2col + GEMM for the rest.
// Clear rather than clever; it defines the numbers faster backends are tested against.
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/reference/gemm.h"

namespace mclip::kernels {
namespace {

void apply_activation(Activation activation, float* y, int64_t count) {
    switch (activation) {
        case Activation::none: return;
        case Activation::relu: relu_inplace(y, count); return;
        case Activation::gelu: gelu_inplace(y, count); return;
    }
}

std::vector<float> copy_f32(const Tensor& t) {
    if (t.empty()) return {};
    const Tensor f = t.dtype() == DType::f32 ? t : t.to_f32();
    return std::vector<float>(f.f32(), f.f32() + f.elements());
}

class ReferenceConv2d final : public Conv2d {
public:
    ReferenceConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias)
        : Conv2d(desc), weight_(copy_f32(weight)), bias_(copy_f32(bias)) {}

    void run(const float* x, int n, int h, int w, float* y) const override {
        const int oh = desc_.output_h(h), ow = desc_.output_w(w);
        const bool depthwise = desc_.groups == desc_.in_channels && desc_.groups > 1;
        for (int b = 0; b < n; ++b) {
            const float* xb = x + static_cast<int64_t>(b) * desc_.in_channels * h * w;
            float* yb = y + static_cast<int64_t>(b) * desc_.out_channels * oh * ow;
            if (depthwise) {
                run_depthwise(xb, h, w, yb, oh, ow);
            } else {
                run_grouped_gemm(xb, h, w, yb, oh, ow);
            }
        }
        apply_activation(desc_.activation, y, static_cast<int64_t>(n) * desc_.out_channels * oh * ow);
    }

private:
    // Each output channel o reads input channel o / multiplier (PyTorch's group order).
    void run_depthwise(const float* x, int h, int w, float* y, int oh, int ow) const {
        const int multiplier = desc_.out_channels / desc_.in_channels;
        const int kh = desc_.kernel_h, kw = desc_.kernel_w;
#pragma omp parallel for schedule(static)
        for (int o = 0; o < desc_.out_channels; ++o) {
            const float* xc = x + static_cast<int64_t>(o / multiplier) * h * w;
            const float* wk = weight_.data() + static_cast<int64_t>(o) * kh * kw;
            float* yo = y + static_cast<int64_t>(o) * oh * ow;
            const float b = bias_.empty() ? 0.0f : bias_[o];
            for (int i = 0; i < oh; ++i) {
                for (int j = 0; j < ow; ++j) {
                    float sum = 0.0f;
                    for (int p = 0; p < kh; ++p) {
                        const int yi = i * desc_.stride_h - desc_.pad_h + p;
                        if (yi < 0 || yi >= h) continue;
                        for (int q = 0; q < kw; ++q) {
                            const int xj = j * desc_.stride_w - desc_.pad_w + q;
                            if (xj < 0 || xj >= w) continue;
                            sum += xc[static_cast<int64_t>(yi) * w + xj] * wk[p * kw + q];
                        }
                    }
                    yo[static_cast<int64_t>(i) * ow + j] = sum + b;
                }
            }
        }
    }

    // Per group: Y_g[out_g, oh·ow] = W_g[out_g, in_g·kh·kw] · im2col(X_g)[in_g·kh·kw, oh·ow].
    void run_grouped_gemm(const float* x, int h, int w, float* y, int oh, int ow) const {
        const int groups = desc_.groups;
        const int in_g = desc_.in_channels / groups, out_g = desc_.out_channels / groups;
        const int kh = desc_.kernel_h, kw = desc_.kernel_w;
        const int64_t patch = static_cast<int64_t>(in_g) * kh * kw;
        const int64_t spatial = static_cast<int64_t>(oh) * ow;
        const bool pointwise = kh == 1 && kw == 1 && desc_.stride_h == 1 && desc_.stride_w == 1 && desc_.pad_h == 0 &&
                               desc_.pad_w == 0;
        std::vector<float> columns(pointwise ? 0 : patch * spatial);
        for (int g = 0; g < groups; ++g) {
            const float* xg = x + static_cast<int64_t>(g) * in_g * h * w;
            const float* b = xg;
            if (!pointwise) {
                im2col(xg, in_g, h, w, oh, ow, columns.data());
                b = columns.data();
            }
            float* yg = y + static_cast<int64_t>(g) * out_g * spatial;
            reference::gemm(out_g, spatial, patch, weight_.data() + static_cast<int64_t>(g) * out_g * patch, patch, b,
                            spatial, yg, spatial, false);
            if (!bias_.empty()) {
                for (int o = 0; o < out_g; ++o) {
                    const float bo = bias_[g * out_g + o];
                    float* row = yg + o * spatial;
                    for (int64_t s = 0; s < spatial; ++s) row[s] += bo;
                }
            }
        }
    }

    void im2col(const float* x, int channels, int h, int w, int oh, int ow, float* columns) const {
        const int kh = desc_.kernel_h, kw = desc_.kernel_w;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < channels; ++c) {
            for (int p = 0; p < kh; ++p) {
                for (int q = 0; q < kw; ++q) {
                    float* row = columns + ((static_cast<int64_t>(c) * kh + p) * kw + q) * oh * ow;
                    for (int i = 0; i < oh; ++i) {
                        const int yi = i * desc_.stride_h - desc_.pad_h + p;
                        for (int j = 0; j < ow; ++j) {
                            const int xj = j * desc_.stride_w - desc_.pad_w + q;
                            row[static_cast<int64_t>(i) * ow + j] =
                                (yi < 0 || yi >= h || xj < 0 || xj >= w) ? 0.0f : x[(static_cast<int64_t>(c) * h + yi) * w + xj];
                        }
                    }
                }
            }
        }
    }

    std::vector<float> weight_;
    std::vector<float> bias_;
};

class ReferenceLinear final : public Linear {
public:
    // Stores Wᵀ [in, out] so the GEMM streams contiguous rows of it.
    ReferenceLinear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias)
        : Linear(desc), bias_(copy_f32(bias)) {
        const std::vector<float> w = copy_f32(weight);
        transposed_.resize(w.size());
        for (int o = 0; o < desc.out_features; ++o) {
            for (int i = 0; i < desc.in_features; ++i) {
                transposed_[static_cast<int64_t>(i) * desc.out_features + o] = w[static_cast<int64_t>(o) * desc.in_features + i];
            }
        }
    }

    void run(const float* x, int rows, float* y, const float* residual) const override {
        const int64_t out = desc_.out_features;
        reference::gemm(rows, out, desc_.in_features, x, desc_.in_features, transposed_.data(), out, y, out, false);
        const int64_t count = static_cast<int64_t>(rows) * out;
        if (!bias_.empty()) {
            for (int r = 0; r < rows; ++r) {
                float* yr = y + r * out;
                for (int64_t o = 0; o < out; ++o) yr[o] += bias_[o];
            }
        }
        apply_activation(desc_.activation, y, count);
        if (residual) add_inplace(y, residual, count);
    }

private:
    std::vector<float> transposed_;
    std::vector<float> bias_;
};

void check_conv(const ConvDesc& d, const Tensor& weight, const Tensor& bias) {
    if (d.groups <= 0 || d.in_channels % d.groups || d.out_channels % d.groups) {
        throw Error(ErrorCode::internal, "convolution channels are not divisible by groups");
    }
    const Shape expected{d.out_channels, d.in_channels / d.groups, d.kernel_h, d.kernel_w};
    if (weight.shape() != expected) {
        throw Error(ErrorCode::internal, "convolution weight " + shape_to_string(weight.shape()) + " != " + shape_to_string(expected));
    }
    if (!bias.empty() && bias.elements() != d.out_channels) throw Error(ErrorCode::internal, "convolution bias size mismatch");
}

class ReferenceBackend final : public Backend {
public:
    std::string name() const override { return "reference"; }
    std::unique_ptr<Conv2d> make_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) override {
        check_conv(desc, weight, bias);
        return std::make_unique<ReferenceConv2d>(desc, weight, bias);
    }
    std::unique_ptr<Linear> make_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias) override {
        if (weight.shape() != Shape{desc.out_features, desc.in_features}) {
            throw Error(ErrorCode::internal, "linear weight " + shape_to_string(weight.shape()) + " does not match its description");
        }
        return std::make_unique<ReferenceLinear>(desc, weight, bias);
    }
};

}  // namespace

Backend& reference_backend() {
    static ReferenceBackend backend;
    return backend;
}

}  // namespace mclip::kernels
