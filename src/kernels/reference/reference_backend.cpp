// The reference backend: direct loops for depthwise convolutions, im2col + GEMM for the rest,
// all in NHWC. Clear rather than clever; it defines the numbers faster backends are tested
// against. bf16 and int8 precision are emulated: inputs and weights are rounded to bfloat16, or
// to multiples of their int8 steps, and the products summed in float32, which is what bf16 and
// int8 hardware computes up to summation order.
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "kernels/reference/gemm.h"

namespace mclip::kernels {
namespace {

float round_through_bf16(float v) { return mclip::bf16_to_f32(mclip::f32_to_bf16(v)); }

// Weights (rows: output channels) or a bias as float32 values of the layer's precision; int8
// weights smoothed per input channel first (ConvDesc::input_smoothing).
std::vector<float> copy_f32(const Tensor& t, Precision precision, const std::vector<float>& smoothing = {}) {
    if (t.empty()) return {};
    const bool smooth = precision == Precision::int8 && !smoothing.empty();
    const Tensor f = smooth ? smooth_input_channels(t, smoothing) : t.dtype() == DType::f32 ? t : t.to_f32();
    std::vector<float> values(f.f32(), f.f32() + f.elements());
    if (precision == Precision::bf16) {
        for (float& v : values) v = round_through_bf16(v);
    } else if (precision == Precision::int8) {
        const int64_t rows = t.dim(0), cols = t.elements() / rows;
        const RowQuantized q = quantize_rows_s8(values.data(), rows, cols);
        for (int64_t i = 0; i < t.elements(); ++i) values[i] = q.values[i] * q.steps[i / cols];
    }
    return values;
}

// The layer's input as float32 values of the layer's precision: widened from bf16, rounded to
// bf16 or to int8 steps of `range` when the layer computes so (channel c of the `channels` first
// divided by smoothing[c] when given), or x itself.
const float* input_as_f32(const void* x, int64_t count, DType type, Precision precision, float range, const std::vector<float>& smoothing,
                          int64_t channels, std::vector<float>& scratch) {
    if (type == DType::f32 && precision == Precision::f32) return static_cast<const float*>(x);
    scratch.resize(count);
    if (type == DType::bf16) {
        kernels::bf16_to_f32(static_cast<const uint16_t*>(x), scratch.data(), count);
    } else {
        std::copy_n(static_cast<const float*>(x), count, scratch.data());
    }
    if (precision == Precision::bf16 && type == DType::f32) {
        for (float& v : scratch) v = round_through_bf16(v);
    } else if (precision == Precision::int8) {
        const float step = int8_step(range);
        const std::vector<float> inverses = int8_inverse_steps(range, smoothing, static_cast<int>(channels));
        for (int64_t i = 0; i < count; ++i) scratch[i] = quantize_s8(scratch[i], inverses[i % channels]) * step;
    }
    return scratch.data();
}

class ReferenceConv2d final : public Conv2d {
public:
    // Weights are rearranged for NHWC: depthwise [kh, kw, out]; otherwise per group a GEMM
    // operand [kh·kw·in_g, out_g] whose rows follow the im2col column order (p, q, channel).
    ReferenceConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias)
        : Conv2d(desc), precision_(compute_precision(desc)), bias_(copy_f32(bias, Precision::f32)) {
        const int kh = desc.kernel_h, kw = desc.kernel_w, out = desc.out_channels;
        std::vector<float> w;
        if (precision_ == Precision::int8 && desc.depthwise()) {
            // The centre tap apart, in float32 (kernels.h, int8_capable); the others quantized.
            const int taps = kh * kw, centre = desc.pad_h * kw + desc.pad_w;
            Tensor off_centre = weight.to_f32().clone();
            for (int o = 0; o < out; ++o) {
                float& tap = off_centre.f32()[static_cast<int64_t>(o) * taps + centre];
                centre_.push_back(tap);
                tap = 0.0f;
            }
            w = copy_f32(off_centre, precision_, desc.input_smoothing);
        } else {
            w = copy_f32(weight, precision_, desc.input_smoothing);
        }
        const int in_g = desc.in_channels / desc.groups, out_g = out / desc.groups;
        weight_.resize(w.size());
        for (int o = 0; o < out; ++o) {
            const int g = o / out_g, og = o % out_g;
            for (int c = 0; c < in_g; ++c) {
                for (int p = 0; p < kh; ++p) {
                    for (int q = 0; q < kw; ++q) {
                        const float v = w[((static_cast<int64_t>(o) * in_g + c) * kh + p) * kw + q];
                        if (desc.depthwise()) {
                            weight_[(static_cast<int64_t>(p) * kw + q) * out + o] = v;
                        } else {
                            const int64_t row = (static_cast<int64_t>(p) * kw + q) * in_g + c;
                            weight_[static_cast<int64_t>(g) * kh * kw * in_g * out_g + row * out_g + og] = v;
                        }
                    }
                }
            }
        }
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        const int oh = desc_.output_h(h), ow = desc_.output_w(w);
        const int64_t in_count = static_cast<int64_t>(n) * h * w * desc_.in_channels;
        const int64_t out_count = static_cast<int64_t>(n) * oh * ow * desc_.out_channels;
        thread_local std::vector<float> input_scratch, output_scratch;
        const float* xf = input_as_f32(x, in_count, desc_.input, precision_, desc_.input_range, desc_.input_smoothing, desc_.in_channels, input_scratch);
        thread_local std::vector<float> unquantized_scratch;
        const float* unquantized =
            centre_.empty() ? nullptr : input_as_f32(x, in_count, desc_.input, Precision::f32, 0, {}, desc_.in_channels, unquantized_scratch);
        float* result = static_cast<float*>(y);
        if (desc_.output != DType::f32 || desc_.accumulate) {
            output_scratch.resize(out_count);
            result = output_scratch.data();
        }
        for (int b = 0; b < n; ++b) {
            const float* xb = xf + static_cast<int64_t>(b) * h * w * desc_.in_channels;
            float* yb = result + static_cast<int64_t>(b) * oh * ow * desc_.out_channels;
            if (desc_.depthwise()) {
                run_depthwise(xb, h, w, yb, oh, ow);
                if (unquantized) add_centre(unquantized + static_cast<int64_t>(b) * h * w * desc_.in_channels, oh * ow, yb);
            } else {
                run_grouped_gemm(xb, h, w, yb, oh, ow);
            }
        }
        apply_activation(desc_.activation, result, out_count);
        store_f32(result, out_count, y, desc_.output, desc_.accumulate);
    }

private:
    // Output channel o reads input channel o / multiplier (PyTorch's group order).
    void run_depthwise(const float* x, int h, int w, float* y, int oh, int ow) const {
        const int in = desc_.in_channels, out = desc_.out_channels;
        const int multiplier = out / in;
        const int kh = desc_.kernel_h, kw = desc_.kernel_w;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < oh; ++i) {
            for (int j = 0; j < ow; ++j) {
                float* yp = y + (static_cast<int64_t>(i) * ow + j) * out;
                for (int o = 0; o < out; ++o) yp[o] = bias_.empty() ? 0.0f : bias_[o];
                for (int p = 0; p < kh; ++p) {
                    const int yi = i * desc_.stride_h - desc_.pad_h + p;
                    if (yi < 0 || yi >= h) continue;
                    for (int q = 0; q < kw; ++q) {
                        const int xj = j * desc_.stride_w - desc_.pad_w + q;
                        if (xj < 0 || xj >= w) continue;
                        const float* xp = x + (static_cast<int64_t>(yi) * w + xj) * in;
                        const float* wk = weight_.data() + (static_cast<int64_t>(p) * kw + q) * out;
                        if (multiplier == 1) {
                            for (int o = 0; o < out; ++o) yp[o] += xp[o] * wk[o];
                        } else {
                            for (int o = 0; o < out; ++o) yp[o] += xp[o / multiplier] * wk[o];
                        }
                    }
                }
            }
        }
    }

    // y += centre ⊙ x at every position (an int8 depthwise layer: stride 1, same size, m = 1).
    void add_centre(const float* x, int64_t positions, float* y) const {
        const int channels = desc_.out_channels;
        for (int64_t i = 0; i < positions * channels; ++i) y[i] += x[i] * centre_[i % channels];
    }

    // Per group: Y_g[oh·ow, out_g] = im2col(X_g)[oh·ow, kh·kw·in_g] · W_g[kh·kw·in_g, out_g].
    void run_grouped_gemm(const float* x, int h, int w, float* y, int oh, int ow) const {
        const int groups = desc_.groups, in = desc_.in_channels, out = desc_.out_channels;
        const int in_g = in / groups, out_g = out / groups;
        const int kh = desc_.kernel_h, kw = desc_.kernel_w;
        const int64_t patch = static_cast<int64_t>(in_g) * kh * kw;
        const int64_t spatial = static_cast<int64_t>(oh) * ow;
        std::vector<float> columns(desc_.pointwise() ? 0 : patch * spatial);
        for (int g = 0; g < groups; ++g) {
            const float* a = x;
            int64_t lda = in;
            if (!desc_.pointwise()) {
                im2col(x, g, h, w, oh, ow, columns.data());
                a = columns.data();
                lda = patch;
            }
            float* yg = y + static_cast<int64_t>(g) * out_g;
            reference::gemm(spatial, out_g, patch, a, lda, weight_.data() + static_cast<int64_t>(g) * patch * out_g, out_g, yg,
                            out, false);
            if (!bias_.empty()) {
                for (int64_t s = 0; s < spatial; ++s) {
                    for (int o = 0; o < out_g; ++o) yg[s * out + o] += bias_[g * out_g + o];
                }
            }
        }
    }

    // columns[i·ow + j, (p·kw + q)·in_g + c] = x[i·stride − pad + p, j·stride − pad + q, g·in_g + c] (0 outside).
    void im2col(const float* x, int g, int h, int w, int oh, int ow, float* columns) const {
        const int in = desc_.in_channels, in_g = in / desc_.groups;
        const int kh = desc_.kernel_h, kw = desc_.kernel_w;
        const int64_t patch = static_cast<int64_t>(in_g) * kh * kw;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < oh; ++i) {
            for (int j = 0; j < ow; ++j) {
                float* row = columns + (static_cast<int64_t>(i) * ow + j) * patch;
                for (int p = 0; p < kh; ++p) {
                    const int yi = i * desc_.stride_h - desc_.pad_h + p;
                    for (int q = 0; q < kw; ++q) {
                        const int xj = j * desc_.stride_w - desc_.pad_w + q;
                        float* dst = row + (static_cast<int64_t>(p) * kw + q) * in_g;
                        if (yi < 0 || yi >= h || xj < 0 || xj >= w) {
                            std::fill(dst, dst + in_g, 0.0f);
                        } else {
                            const float* src = x + (static_cast<int64_t>(yi) * w + xj) * in + static_cast<int64_t>(g) * in_g;
                            std::copy(src, src + in_g, dst);
                        }
                    }
                }
            }
        }
    }

    Precision precision_;
    std::vector<float> weight_;
    std::vector<float> bias_;
    std::vector<float> centre_;  // an int8 depthwise layer's centre tap, per channel; empty otherwise
};

class ReferenceLinear final : public Linear {
public:
    // Stores Wᵀ [in, out] so the GEMM streams contiguous rows of it.
    ReferenceLinear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias)
        : Linear(desc), precision_(compute_precision(desc)), bias_(copy_f32(bias, Precision::f32)) {
        const std::vector<float> w = copy_f32(weight, precision_, desc.input_smoothing);
        transposed_.resize(w.size());
        for (int o = 0; o < desc.out_features; ++o) {
            for (int i = 0; i < desc.in_features; ++i) {
                transposed_[static_cast<int64_t>(i) * desc.out_features + o] = w[static_cast<int64_t>(o) * desc.in_features + i];
            }
        }
    }

protected:
    void execute(const void* x, int rows, void* y) const override {
        const int64_t in = desc_.in_features, out = desc_.out_features;
        const int64_t count = rows * out;
        thread_local std::vector<float> input_scratch, output_scratch;
        const float* xf = input_as_f32(x, rows * in, desc_.input, precision_, desc_.input_range, desc_.input_smoothing, in, input_scratch);
        float* result = static_cast<float*>(y);
        if (desc_.output != DType::f32 || desc_.accumulate) {
            output_scratch.resize(count);
            result = output_scratch.data();
        }
        reference::gemm(rows, out, in, xf, in, transposed_.data(), out, result, out, false);
        if (!bias_.empty()) {
            for (int64_t r = 0; r < rows; ++r) {
                for (int64_t o = 0; o < out; ++o) result[r * out + o] += bias_[o];
            }
        }
        apply_activation(desc_.activation, result, count);
        store_f32(result, count, y, desc_.output, desc_.accumulate);
    }

private:
    Precision precision_;
    std::vector<float> transposed_;
    std::vector<float> bias_;
};

// ops.h's attention per sequence. In bf16 (and int8, whose attention is bf16), q, k and v are
// rounded to bf16 first, as a bf16 kernel's operands are; the probabilities stay float32 here (a bf16 kernel rounds them too).
class ReferenceAttention final : public Attention {
public:
    using Attention::Attention;

protected:
    void execute(const void* qkv, int n, int length, void* out) const override {
        const int width = desc_.heads * desc_.head_dim;
        const int64_t in_count = static_cast<int64_t>(n) * length * 3 * width;
        thread_local std::vector<float> input_scratch, output_scratch;
        const Precision precision = desc_.precision == Precision::f32 ? Precision::f32 : Precision::bf16;
        const float* q = input_as_f32(qkv, in_count, desc_.input, precision, 0, {}, 1, input_scratch);
        const int64_t out_count = static_cast<int64_t>(n) * length * width;
        output_scratch.resize(out_count);
        for (int b = 0; b < n; ++b) {
            multi_head_attention(q + static_cast<int64_t>(b) * length * 3 * width, length, desc_.heads, desc_.head_dim, desc_.causal,
                                 output_scratch.data() + static_cast<int64_t>(b) * length * width);
        }
        store_f32(output_scratch.data(), out_count, out, desc_.output, false);
    }
};

class ReferenceBackend final : public Backend {
public:
    std::string name() const override { return "reference"; }
    bool native(Precision precision) const override { return precision == Precision::f32; }
    std::unique_ptr<Conv2d> make_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) override {
        check_conv(desc, weight, bias);
        return std::make_unique<ReferenceConv2d>(desc, weight, bias);
    }
    std::unique_ptr<Linear> make_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias) override {
        check_linear(desc, weight, bias);
        return std::make_unique<ReferenceLinear>(desc, weight, bias);
    }
    std::unique_ptr<Attention> make_attention(const AttentionDesc& desc) override {
        return std::make_unique<ReferenceAttention>(desc);
    }
};

}  // namespace

Backend& reference_backend() {
    static ReferenceBackend backend;
    return backend;
}

}  // namespace mclip::kernels
