// Per-operator tests of the kernel backends on random inputs (fixed seeds) and awkward shapes:
// the reference backend against a naive direct convolution / matrix product written here, and
// every registered backend against the reference backend, in float32, bf16 and int8 precision.
// A backend or precision that cannot run on this CPU and build is reported as a skipped test,
// with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/amx/attention.h"
#include "kernels/amx/pointwise_ffn.h"
#include "kernels/amx/tiles.h"
#include "kernels/avx2/depthwise_conv.h"
#include "kernels/avx512/attention.h"
#include "kernels/avx512/bf16_pointwise_conv.h"
#include "kernels/avx512/conv_pair.h"
#include "kernels/avx512/depthwise_conv.h"
#include "kernels/avx512/int8_depthwise_conv.h"
#include "kernels/avx512/int8_depthwise_ffn.h"
#include "kernels/avx512/int8_pointwise_ffn.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

using namespace mclip;
using kernels::Activation;
using kernels::Precision;

namespace {

std::vector<float> random_values(int64_t count, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(count);
    for (float& x : v) x = dist(rng);
    return v;
}

Tensor random_tensor(const Shape& shape, float scale, uint32_t seed) {
    const auto v = random_values(shape_elements(shape), scale, seed);
    return Tensor::from_f32(shape, v);
}

// A buffer of f32 or bf16 elements holding given float values (rounded for bf16).
struct Buffer {
    DType type;
    std::vector<float> f32;
    std::vector<uint16_t> bf16;
    Buffer(DType t, const std::vector<float>& values) : type(t) {
        if (t == DType::f32) {
            f32 = values;
        } else {
            bf16.resize(values.size());
            kernels::f32_to_bf16(values.data(), bf16.data(), static_cast<int64_t>(values.size()));
        }
    }
    void* data() { return type == DType::f32 ? static_cast<void*>(f32.data()) : static_cast<void*>(bf16.data()); }
    std::vector<float> values() const {
        if (type == DType::f32) return f32;
        std::vector<float> out(bf16.size());
        kernels::bf16_to_f32(bf16.data(), out.data(), static_cast<int64_t>(bf16.size()));
        return out;
    }
};

std::vector<std::string> backend_names() {
    std::vector<std::string> names;
    for (const auto& entry : kernels::registered_backends()) names.push_back(entry.name);
    return names;
}

const kernels::BackendEntry& backend_entry(const std::string& name) {
    for (const auto& entry : kernels::registered_backends()) {
        if (entry.name == name) return entry;
    }
    throw Error(ErrorCode::internal, "no backend named " + name);
}

// Why the backend cannot run `precision` here, or empty when it can.
std::string cannot_run(const std::string& name, Precision precision) {
    const kernels::BackendEntry& entry = backend_entry(name);
    if (!entry.available) return name + " is not available: " + entry.unavailable_reason;
    if (entry.runs(precision)) return "";
    std::string sets;
    for (const auto& set : entry.instruction_sets) sets += " " + set;
    return name + " does not run " + kernels::to_string(precision) + " on this CPU (its kernels use:" + sets + ")";
}

// Declares `var` as the backend named `name`, or skips the test with the reason when it cannot
// run `precision` on this CPU and build.
#define BACKEND_OR_SKIP(var, name, precision)                               \
    kernels::Backend* var = nullptr;                                        \
    do {                                                                    \
        const std::string why_ = cannot_run(name, precision);              \
        if (!why_.empty()) GTEST_SKIP() << why_;                            \
        var = backend_entry(name).backend;                                  \
    } while (0)

// Where a backend's int8 arithmetic departs from the reference backend's emulation, which is
// that of AVX512-VNNI and AMX with bf16 beside them:
// - its int8 companion (Backend::int8_companion) may be float32: the layers int8 does not serve
//   are then compared with the float32 reference;
// - without VNNI, oneDNN keeps vpmaddubsw's 16-bit sums of two u8·s8 products from saturating by
//   halving the weights, so the backend gives them on even levels (ops.h, quantize_rows_s8): 7
//   significant bits, and the int8 layers differ from the 8-bit emulation by about one of its
//   weight steps, still within the bounds against the exact product.
bool int8_weights_halved(const std::string& backend) {
    if (backend == "reference") return false;
    for (const std::string& set : backend_entry(backend).instruction_sets) {
        if (set == "AVX512-VNNI" || set == "AVX-VNNI" || set == "AMX-INT8") return false;
    }
    return true;
}

template <typename Desc>
Desc as_emulated(const kernels::Backend& backend, Desc d) {
    if (kernels::compute_precision(d) != Precision::int8 && backend.int8_companion() == Precision::f32) d.precision = Precision::f32;
    return d;
}

double relative_error(const std::vector<float>& ours, const std::vector<float>& expected) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        diff += (static_cast<double>(ours[i]) - expected[i]) * (static_cast<double>(ours[i]) - expected[i]);
        norm += static_cast<double>(expected[i]) * expected[i];
    }
    return std::sqrt(diff / std::max(norm, 1e-30));
}

double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

double activate(Activation a, double v) {
    if (a == Activation::gelu) return gelu(v);
    if (a == Activation::relu) return std::max(v, 0.0);
    if (a == Activation::quick_gelu) return v / (1.0 + std::exp(-1.702 * v));
    return v;
}

// SmoothQuant-style factors in [0.5, 2] for `channels` input channels (ConvDesc::input_smoothing).
std::vector<float> smoothing_for(int channels) {
    std::vector<float> factors;
    for (float v : random_values(channels, 1.0f, 41)) factors.push_back(std::exp2(v));  // v in [-1, 1]
    return factors;
}

struct ConvCase {
    std::string name;
    int n, in, out, h, w, kh, kw, stride, groups;
    Activation activation;
    bool accumulate;
};

std::vector<ConvCase> conv_cases() {
    return {
        {"pointwise_odd_channels", 1, 5, 7, 6, 9, 1, 1, 1, 1, Activation::none, false},
        {"pointwise_gelu_batch3", 3, 16, 48, 5, 5, 1, 1, 1, 1, Activation::gelu, false},
        {"pointwise_residual", 2, 48, 16, 7, 3, 1, 1, 1, 1, Activation::none, true},
        {"dense_3x3_stride2_rgb", 2, 3, 8, 17, 15, 3, 3, 2, 1, Activation::gelu, false},
        {"dense_7x7", 1, 4, 6, 11, 10, 7, 7, 1, 1, Activation::relu, false},
        {"dense_3x3_wide_gelu", 1, 24, 20, 9, 8, 3, 3, 1, 1, Activation::gelu, false},
        {"grouped_3x3", 3, 6, 9, 8, 7, 3, 3, 1, 3, Activation::none, false},
        {"depthwise_3x3_odd", 3, 13, 13, 9, 11, 3, 3, 1, 13, Activation::none, false},
        {"depthwise_7x7_residual", 1, 24, 24, 8, 8, 7, 7, 1, 24, Activation::none, true},
        {"depthwise_1x11_sequence", 2, 32, 32, 1, 77, 1, 11, 1, 32, Activation::none, false},
        {"depthwise_1x11_odd_gelu_residual", 1, 13, 13, 1, 21, 1, 11, 1, 13, Activation::gelu, true},
        {"depthwise_multiplier2_7x7_stride2", 2, 16, 32, 13, 12, 7, 7, 2, 16, Activation::gelu, false},
        {"depthwise_multiplier2_3x3_odd", 1, 5, 10, 6, 6, 3, 3, 1, 5, Activation::none, false},
        {"depthwise_stride2_gelu_batch3", 3, 16, 16, 10, 9, 3, 3, 2, 16, Activation::gelu, true},
        // Wide enough for column blocks clear of both edges (the AVX-512 kernel's unchecked path).
        {"depthwise_7x7_wide_40_channels", 1, 40, 40, 9, 37, 7, 7, 1, 40, Activation::none, false},
        {"depthwise_multiplier2_7x7_stride2_wide", 2, 24, 48, 11, 45, 7, 7, 2, 24, Activation::gelu, true},
        {"depthwise_3x3_stride2_wide_relu", 1, 32, 32, 7, 50, 3, 3, 2, 32, Activation::relu, false},
    };
}

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

kernels::ConvDesc describe(const ConvCase& c) {
    kernels::ConvDesc d;
    d.in_channels = c.in;
    d.out_channels = c.out;
    d.kernel_h = c.kh;
    d.kernel_w = c.kw;
    d.stride_h = d.stride_w = c.stride;
    d.pad_h = c.kh / 2;
    d.pad_w = c.kw / 2;
    d.groups = c.groups;
    d.activation = c.activation;
    d.accumulate = c.accumulate;
    return d;
}

// The PyTorch definition, NHWC in and out, in double.
std::vector<float> naive_conv(const ConvCase& c, const std::vector<float>& x, const Tensor& weight, const Tensor& bias,
                              const std::vector<float>& y0) {
    const kernels::ConvDesc d = describe(c);
    const int oh = d.output_h(c.h), ow = d.output_w(c.w);
    const int in_g = c.in / c.groups, out_g = c.out / c.groups;
    std::vector<float> y(static_cast<size_t>(c.n) * oh * ow * c.out);
    for (int b = 0; b < c.n; ++b) {
        for (int i = 0; i < oh; ++i) {
            for (int j = 0; j < ow; ++j) {
                for (int o = 0; o < c.out; ++o) {
                    const int g = o / out_g;
                    double sum = bias.f32()[o];
                    for (int ci = 0; ci < in_g; ++ci) {
                        for (int p = 0; p < c.kh; ++p) {
                            for (int q = 0; q < c.kw; ++q) {
                                const int yi = i * c.stride - d.pad_h + p, xj = j * c.stride - d.pad_w + q;
                                if (yi < 0 || yi >= c.h || xj < 0 || xj >= c.w) continue;
                                const float xv = x[((static_cast<size_t>(b) * c.h + yi) * c.w + xj) * c.in + g * in_g + ci];
                                sum += static_cast<double>(xv) * weight.f32()[((static_cast<size_t>(o) * in_g + ci) * c.kh + p) * c.kw + q];
                            }
                        }
                    }
                    const size_t at = ((static_cast<size_t>(b) * oh + i) * ow + j) * c.out + o;
                    y[at] = static_cast<float>(activate(c.activation, sum) + (c.accumulate ? y0[at] : 0.0));
                }
            }
        }
    }
    return y;
}

struct ConvRun {
    std::vector<float> x, y0;
    Tensor weight, bias;
    int64_t out_count;
};

ConvRun make_conv_inputs(const ConvCase& c) {
    const kernels::ConvDesc d = describe(c);
    ConvRun r;
    r.x = random_values(static_cast<int64_t>(c.n) * c.h * c.w * c.in, 1.0f, 11);
    r.weight = random_tensor({c.out, c.in / c.groups, c.kh, c.kw}, 0.5f, 12);
    r.bias = random_tensor({c.out}, 0.5f, 13);
    r.out_count = static_cast<int64_t>(c.n) * d.output_h(c.h) * d.output_w(c.w) * c.out;
    r.y0 = random_values(r.out_count, 1.0f, 14);
    return r;
}

std::vector<float> run_conv(kernels::Backend& backend, kernels::ConvDesc d, const ConvCase& c, const ConvRun& r) {
    const auto conv = backend.make_conv2d(d, r.weight, r.bias);
    Buffer x(d.input, r.x), y(d.output, r.y0);
    conv->run(x.data(), c.n, c.h, c.w, y.data());
    return y.values();
}

class ConvOp : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvOp, ReferenceMatchesNaiveConvolution) {
    const ConvCase& c = GetParam();
    const ConvRun r = make_conv_inputs(c);
    const auto expected = naive_conv(c, r.x, r.weight, r.bias, r.y0);
    EXPECT_LE(relative_error(run_conv(kernels::reference_backend(), describe(c), c, r), expected), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvOp, ::testing::ValuesIn(conv_cases()), [](const auto& info) { return info.param.name; });

// The hand-written AVX2 depthwise kernel on its own, on every depthwise case it takes (the
// oneDNN backend uses it only for some shapes, and only below AVX-512).
class Avx2DepthwiseConv : public ::testing::TestWithParam<ConvCase> {};

std::vector<ConvCase> avx2_depthwise_cases() {
    std::vector<ConvCase> cases;
    for (const ConvCase& c : conv_cases()) {
        if (kernels::avx2::handles_depthwise(describe(c))) cases.push_back(c);
    }
    return cases;
}

TEST_P(Avx2DepthwiseConv, MatchesNaiveConvolution) {
    if (!kernels::avx2::cpu_supported()) GTEST_SKIP() << "this CPU lacks AVX2 or FMA";
    const ConvCase& c = GetParam();
    const ConvRun r = make_conv_inputs(c);
    const auto conv = kernels::avx2::make_depthwise_conv2d(describe(c), r.weight, r.bias);
    std::vector<float> y = r.y0;
    conv->run(r.x.data(), c.n, c.h, c.w, y.data());
    EXPECT_LE(relative_error(y, naive_conv(c, r.x, r.weight, r.bias, r.y0)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Avx2DepthwiseConv, ::testing::ValuesIn(avx2_depthwise_cases()),
                         [](const auto& info) { return info.param.name; });

// The hand-written AVX-512 depthwise kernel on its own, on every depthwise case it takes, with
// float32 and bf16 buffers in and out (the oneDNN backend uses it for every depthwise layer it
// takes where oneDNN runs AVX-512; its backend tests see float32 buffers only).
class Avx512DepthwiseConv : public ::testing::TestWithParam<ConvCase> {};

std::vector<ConvCase> avx512_depthwise_cases() {
    std::vector<ConvCase> cases;
    for (const ConvCase& c : conv_cases()) {
        if (kernels::avx512::handles_depthwise(describe(c))) cases.push_back(c);
    }
    return cases;
}

TEST_P(Avx512DepthwiseConv, MatchesNaiveConvolution) {
    if (!kernels::avx512::cpu_supported()) GTEST_SKIP() << "this CPU lacks AVX512F, AVX512BW or AVX512VL";
    const ConvCase& c = GetParam();
    const ConvRun r = make_conv_inputs(c);
    for (DType input : {DType::f32, DType::bf16}) {
        for (DType output : {DType::f32, DType::bf16}) {
            kernels::ConvDesc d = describe(c);
            d.input = input;
            d.output = output;
            Buffer x(input, r.x), y(output, r.y0);
            kernels::avx512::make_depthwise_conv2d(d, r.weight, r.bias)->run(x.data(), c.n, c.h, c.w, y.data());
            // Against the exact convolution of the values the buffers hold: only the bf16
            // output's rounding (2^-9 relative at most) may remain.
            const auto expected = naive_conv(c, x.values(), r.weight, r.bias, Buffer(output, r.y0).values());
            EXPECT_LE(relative_error(y.values(), expected), output == DType::bf16 ? 4e-3 : 1e-5)
                << "input " << to_string(input) << " output " << to_string(output);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Avx512DepthwiseConv, ::testing::ValuesIn(avx512_depthwise_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Avx512DepthwiseConv, TakesTheShapesItIsBuiltFor) {
    kernels::ConvDesc d;
    d.in_channels = d.out_channels = d.groups = 64;
    d.kernel_h = d.kernel_w = 7;
    EXPECT_TRUE(kernels::avx512::handles_depthwise(d));
    d.stride_w = d.stride_h = 2;
    d.out_channels = 128;
    EXPECT_TRUE(kernels::avx512::handles_depthwise(d)) << "channel multiplier 2";
    d.out_channels = 192;
    EXPECT_FALSE(kernels::avx512::handles_depthwise(d)) << "channel multiplier 3";
    d.out_channels = 64;
    d.kernel_w = 5;
    EXPECT_FALSE(kernels::avx512::handles_depthwise(d)) << "a kernel width it is not built for";
    d.kernel_w = 7;
    d.precision = Precision::bf16;
    EXPECT_FALSE(kernels::avx512::handles_depthwise(d)) << "bf16 products";
    d.precision = Precision::f32;
    d.groups = 1;
    EXPECT_FALSE(kernels::avx512::handles_depthwise(d)) << "not depthwise";
}

// The MCi stem's first two layers fused (kernels/avx512/conv_pair.h) against the two
// convolutions in double, the first one's output rounded to float32 as the kernel keeps it.
// Shapes: widths that do not fill a tile of six columns, odd sizes (a padded last column and row
// on the right and bottom), an image of two rows (one row of each map), 80 channels (a chunk of
// four vectors and one of one) and 48 (three), batches of two and three, bands of rows sharing a
// first-layer row (two threads), GELU or none after each layer.
TEST(Avx512ConvPair, MatchesTheTwoConvolutionsInDouble) {
    if (!kernels::avx512::cpu_supported()) GTEST_SKIP() << "this CPU lacks AVX512F, AVX512BW or AVX512VL";
    struct Case {
        int n, channels, h, w;
        Activation first, second;
        int threads;
    };
    const Case cases[] = {{1, 64, 64, 64, Activation::gelu, Activation::gelu, 2}, {2, 80, 37, 29, Activation::gelu, Activation::none, 2},
                          {1, 48, 2, 13, Activation::none, Activation::gelu, 1}, {3, 16, 9, 8, Activation::gelu, Activation::gelu, 2}};
    for (const Case& c : cases) {
        const kernels::ThreadCountScope team(c.threads);
        const ConvCase first{"first", c.n, 3, c.channels, c.h, c.w, 3, 3, 2, 1, c.first, false};
        const kernels::ConvDesc d1 = describe(first);
        const ConvCase second{"second", c.n, c.channels, c.channels, d1.output_h(c.h), d1.output_w(c.w), 3, 3, 2, c.channels, c.second, false};
        const kernels::ConvDesc d2 = describe(second);
        ASSERT_TRUE(kernels::avx512::handles_conv_pair(d1, d2));
        const std::vector<float> x = random_values(static_cast<int64_t>(c.n) * c.h * c.w * 3, 1.0f, 41);
        const Tensor w1 = random_tensor({c.channels, 3, 3, 3}, 0.5f, 42), b1 = random_tensor({c.channels}, 0.5f, 43);
        const Tensor w2 = random_tensor({c.channels, 1, 3, 3}, 0.5f, 44), b2 = random_tensor({c.channels}, 0.5f, 45);
        std::vector<float> y(static_cast<size_t>(c.n) * d2.output_h(second.h) * d2.output_w(second.w) * c.channels, -1.0f);
        kernels::avx512::make_conv_pair(d1, w1, b1, d2, w2, b2)->run(x.data(), c.n, c.h, c.w, y.data());
        const std::vector<float> expected = naive_conv(second, naive_conv(first, x, w1, b1, {}), w2, b2, {});
        EXPECT_LE(relative_error(y, expected), 1e-5) << c.n << " × " << c.h << "×" << c.w << ", " << c.channels << " channels, " << c.threads
                                                     << " threads";
    }
}

TEST(Avx512ConvPair, DeclinesWhatItIsNotBuiltFor) {
    const ConvCase first{"first", 1, 3, 64, 256, 256, 3, 3, 2, 1, Activation::gelu, false};
    const ConvCase second{"second", 1, 64, 64, 128, 128, 3, 3, 2, 64, Activation::gelu, false};
    const kernels::ConvDesc d1 = describe(first), d2 = describe(second);
    EXPECT_TRUE(kernels::avx512::handles_conv_pair(d1, d2)) << "the S0 stem";
    kernels::ConvDesc other = d1;
    other.in_channels = 4;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(other, d2)) << "four input channels";
    other = d1;
    other.stride_h = other.stride_w = 1;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(other, d2)) << "stride 1";
    other = d1;
    other.activation = Activation::relu;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(other, d2)) << "ReLU";
    other = d1;
    other.input = DType::bf16;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(other, d2)) << "a bf16 image";
    const ConvCase narrow{"narrow", 1, 3, 40, 256, 256, 3, 3, 2, 1, Activation::gelu, false};
    const ConvCase narrow_depthwise{"narrow_depthwise", 1, 40, 40, 128, 128, 3, 3, 2, 40, Activation::gelu, false};
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(describe(narrow), describe(narrow_depthwise))) << "40 channels";
    other = d2;
    other.groups = 1;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(d1, other)) << "a dense second layer";
    other = d2;
    other.out_channels = 128;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(d1, other)) << "channel multiplier 2";
    other = d2;
    other.output = DType::bf16;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(d1, other)) << "a bf16 output";
    other = d2;
    other.accumulate = true;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(d1, other)) << "a residual";
    other = d2;
    other.kernel_h = other.kernel_w = 5;
    other.pad_h = other.pad_w = 2;
    EXPECT_FALSE(kernels::avx512::handles_conv_pair(d1, other)) << "a 5×5 depthwise kernel";
}

// The bf16 1×1 kernel against its arithmetic in double: the input and the weights rounded to
// bf16, their products summed exactly, then the bias, GELU and residual; only the float32 rounding
// of the sums (and a bf16 output's rounding) may remain. Shapes: S0's stem layer (threads sharing
// the positions) and last downsampling layer (few positions: threads sharing the output chunks),
// odd input channels (the zero pad channel), 80 outputs (a chunk of four vectors and one of one),
// 48 (three), positions that fill neither a tile nor a block, batches, float32 and bf16 out, with
// and without a residual, one thread and two.
TEST(Avx512Bf16Pointwise, MatchesItsArithmeticInDouble) {
    if (!kernels::avx512::bf16_supported()) GTEST_SKIP() << "this CPU lacks AVX512-BF16";
    struct Case {
        int n, in, out, h, w;
        Activation activation;
        bool accumulate;
        DType output;
        int threads;
    };
    const Case cases[] = {{1, 64, 64, 64, 64, Activation::gelu, false, DType::f32, 2},
                          {1, 512, 512, 8, 8, Activation::gelu, false, DType::f32, 2},
                          {2, 37, 80, 5, 7, Activation::none, true, DType::f32, 2},
                          {3, 48, 48, 3, 5, Activation::gelu, false, DType::bf16, 1},
                          {1, 160, 16, 13, 11, Activation::none, true, DType::bf16, 2}};
    for (const Case& c : cases) {
        const kernels::ThreadCountScope team(c.threads);
        const ConvCase layer{"pointwise", c.n, c.in, c.out, c.h, c.w, 1, 1, 1, 1, c.activation, c.accumulate};
        kernels::ConvDesc d = describe(layer);
        d.precision = Precision::bf16;
        d.output = c.output;
        ASSERT_TRUE(kernels::avx512::handles_bf16_pointwise(d));
        const int64_t positions = static_cast<int64_t>(c.n) * c.h * c.w;
        const std::vector<float> x = random_values(positions * c.in, 1.0f, 51);
        const Tensor weight = random_tensor({c.out, c.in, 1, 1}, 0.5f, 52), bias = random_tensor({c.out}, 0.5f, 53);
        Buffer y(c.output, random_values(positions * c.out, 1.0f, 54));
        const std::vector<float> y0 = y.values();
        kernels::avx512::make_bf16_pointwise_conv2d(d, weight, bias)->run(x.data(), c.n, c.h, c.w, y.data());
        const std::vector<float> weight_values(weight.f32(), weight.f32() + weight.elements());
        const Tensor rounded_weight = Tensor::from_f32(weight.shape(), Buffer(DType::bf16, weight_values).values());
        const std::vector<float> expected = naive_conv(layer, Buffer(DType::bf16, x).values(), rounded_weight, bias, y0);
        EXPECT_LE(relative_error(y.values(), expected), c.output == DType::bf16 ? 4e-3 : 1e-5)
            << c.n << " × " << c.h << "×" << c.w << ", " << c.in << " → " << c.out << ", " << to_string(c.output) << " out"
            << ", " << c.threads << " threads";
    }
}

TEST(Avx512Bf16Pointwise, DeclinesWhatItIsNotBuiltFor) {
    kernels::ConvDesc d = describe({"pointwise", 1, 64, 64, 64, 64, 1, 1, 1, 1, Activation::gelu, false});
    d.precision = Precision::bf16;
    EXPECT_TRUE(kernels::avx512::handles_bf16_pointwise(d)) << "S0's stem 1×1";
    kernels::ConvDesc other = d;
    other.precision = Precision::f32;
    EXPECT_FALSE(kernels::avx512::handles_bf16_pointwise(other)) << "float32";
    other = d;
    other.out_channels = 40;
    EXPECT_FALSE(kernels::avx512::handles_bf16_pointwise(other)) << "40 outputs";
    other = d;
    other.activation = Activation::relu;
    EXPECT_FALSE(kernels::avx512::handles_bf16_pointwise(other)) << "ReLU";
    other = d;
    other.input = DType::bf16;
    EXPECT_FALSE(kernels::avx512::handles_bf16_pointwise(other)) << "a bf16 input";
    other = d;
    other.stride_h = other.stride_w = 2;
    EXPECT_FALSE(kernels::avx512::handles_bf16_pointwise(other)) << "stride 2";
    other = d;
    other.kernel_h = other.kernel_w = 3;
    other.pad_h = other.pad_w = 1;
    EXPECT_FALSE(kernels::avx512::handles_bf16_pointwise(other)) << "3×3";
}

// A calibrated int8 depthwise layer of `channels` channels, its kernel kh × kw keeping the size.
kernels::ConvDesc int8_depthwise_desc(int channels, int kh, int kw, float input_range) {
    kernels::ConvDesc d;
    d.in_channels = d.out_channels = d.groups = channels;
    d.kernel_h = kh;
    d.kernel_w = kw;
    d.pad_h = kh / 2;
    d.pad_w = kw / 2;
    d.precision = Precision::int8;
    d.input_range = input_range;
    return d;
}

// A calibrated int8 FFN, channels → hidden (GELU) → channels, its input of type `input`.
kernels::PointwiseFfnDesc int8_ffn_desc(int channels, int hidden, DType input, float input_range, float hidden_range) {
    kernels::PointwiseFfnDesc d;
    d.channels = channels;
    d.hidden = hidden;
    d.precision = Precision::int8;
    d.input = input;
    d.input_range = input_range;
    d.hidden_range = hidden_range;
    return d;
}

// The int8 depthwise kernel against its arithmetic in double: the input quantized per channel
// (the smoothed step), the smoothed weights per channel without the centre tap, their integer
// products summed exactly, and the centre tap's float32 weight times the unquantized input. Only
// the float32 rounding of the sums (and of a bf16 output) may remain. Shapes: channels that do
// not fill a block, widths that do not fill a tile of 8 columns, odd heights (a last row computed
// alone), images lower than the kernel, 5×5, 7×7 and 11×9 kernels (two and three quads per row),
// float32 and bf16 in and out, with and without a residual, one thread and two.
TEST(Int8DepthwiseConv, MatchesItsArithmeticInDouble) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    struct Case {
        int n, channels, h, w, kh, kw;
        DType input, output;
        bool accumulate, smoothed;
        int threads;
    };
    const Case cases[] = {{2, 13, 9, 11, 7, 7, DType::f32, DType::f32, false, true, 2},  {1, 40, 17, 20, 7, 7, DType::bf16, DType::f32, true, false, 1},
                          {3, 32, 3, 5, 5, 5, DType::f32, DType::bf16, false, true, 2}, {1, 16, 12, 30, 11, 9, DType::f32, DType::f32, false, true, 2},
                          {1, 64, 16, 16, 7, 7, DType::bf16, DType::bf16, false, false, 2}};
    for (const Case& c : cases) {
        const kernels::ThreadCountScope team(c.threads);
        kernels::ConvDesc d = int8_depthwise_desc(c.channels, c.kh, c.kw, 1.5f);  // x in [-2, 2]: some inputs saturate
        d.input = c.input;
        d.output = c.output;
        d.accumulate = c.accumulate;
        if (c.smoothed) {
            for (float v : random_values(c.channels, 0.5f, 51)) d.input_smoothing.push_back(1.0f + v);
        }
        ASSERT_TRUE(kernels::avx512::handles_int8_depthwise(d)) << c.kh << "x" << c.kw;
        const Tensor weight = random_tensor({c.channels, 1, c.kh, c.kw}, 0.3f, 52), bias = random_tensor({c.channels}, 0.5f, 53);
        const int64_t count = static_cast<int64_t>(c.n) * c.h * c.w * c.channels;
        Buffer x(c.input, random_values(count, 2.0f, 54)), y(c.output, random_values(count, 1.0f, 55));
        const std::vector<float> y0 = y.values();
        kernels::avx512::make_int8_depthwise_conv2d(d, weight, bias)->run(x.data(), c.n, c.h, c.w, y.data());

        const int taps = c.kh * c.kw, centre = d.pad_h * c.kw + d.pad_w;
        Tensor off_centre = d.input_smoothing.empty() ? weight.clone() : kernels::smooth_input_channels(weight, d.input_smoothing);
        for (int ch = 0; ch < c.channels; ++ch) off_centre.f32()[ch * taps + centre] = 0.0f;
        const kernels::RowQuantized q = kernels::quantize_rows_s8(off_centre.f32(), c.channels, taps);
        const std::vector<float> inverse = kernels::int8_inverse_steps(d.input_range, d.input_smoothing, c.channels);
        const std::vector<float> xv = x.values();
        std::vector<float> expected(count);
        for (int b = 0; b < c.n; ++b) {
            for (int i = 0; i < c.h; ++i) {
                for (int j = 0; j < c.w; ++j) {
                    for (int ch = 0; ch < c.channels; ++ch) {
                        int64_t sum = 0;
                        for (int p = 0; p < c.kh; ++p) {
                            for (int t = 0; t < c.kw; ++t) {
                                const int yi = i - d.pad_h + p, xj = j - d.pad_w + t;
                                if (yi < 0 || yi >= c.h || xj < 0 || xj >= c.w) continue;
                                const float v = xv[((static_cast<int64_t>(b) * c.h + yi) * c.w + xj) * c.channels + ch];
                                sum += int64_t{kernels::quantize_s8(v, inverse[ch])} * q.values[static_cast<size_t>(ch) * taps + p * c.kw + t];
                            }
                        }
                        const int64_t at = ((static_cast<int64_t>(b) * c.h + i) * c.w + j) * c.channels + ch;
                        const double value = sum * double{kernels::int8_step(d.input_range)} * q.steps[ch] + bias.f32()[ch] +
                                             double{weight.f32()[ch * taps + centre]} * xv[at];
                        expected[at] = static_cast<float>(value + (c.accumulate ? y0[at] : 0.0));
                    }
                }
            }
        }
        EXPECT_LE(relative_error(y.values(), expected), c.output == DType::bf16 ? 4e-3 : 1e-6)
            << c.channels << " channels, " << c.h << "x" << c.w << ", kernel " << c.kh << "x" << c.kw << ", " << to_string(c.input) << " → "
            << to_string(c.output) << (c.accumulate ? " added" : "") << (c.smoothed ? ", smoothed" : "");
    }
}

// The centre tap is not quantized: with only a centre tap and a range far below the input's,
// which would clamp every quantized input, the layer passes x through.
TEST(Int8DepthwiseConv, KeepsTheCentreTapUnquantized) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    const kernels::ConvDesc d = int8_depthwise_desc(24, 7, 7, 0.01f);
    Tensor weight = Tensor::zeros_f32({24, 1, 7, 7});
    for (int c = 0; c < 24; ++c) weight.f32()[c * 49 + 24] = 1.0f;
    const std::vector<float> x = random_values(9 * 10 * 24, 3.0f, 61);
    std::vector<float> y(x.size(), 0.0f);
    kernels::avx512::make_int8_depthwise_conv2d(d, weight, Tensor())->run(x.data(), 1, 9, 10, y.data());
    EXPECT_EQ(y, x);
}

// What the int8 depthwise kernel leaves to the float32 one.
TEST(Int8DepthwiseConv, DeclinesWhatItIsNotBuiltFor) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    const kernels::ConvDesc d = int8_depthwise_desc(64, 7, 7, 1.0f);
    EXPECT_TRUE(kernels::avx512::handles_int8_depthwise(d));
    kernels::ConvDesc other = d;
    other.input_range = 0;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "not calibrated";
    other = d;
    other.kernel_h = other.kernel_w = 3;
    other.pad_h = other.pad_w = 1;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "3×3: float32 (kernels.h)";
    other = d;
    other.stride_h = other.stride_w = 2;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "stride 2";
    other = d;
    other.out_channels = 128;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "channel multiplier 2";
    other = d;
    other.pad_h = other.pad_w = 0;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "an output smaller than the input";
    other = d;
    other.kernel_h = other.kernel_w = 13;
    other.pad_h = other.pad_w = 6;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "wider than 11";
    other = d;
    other.activation = Activation::gelu;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "an activation";
    other = d;
    other.output = DType::bf16;
    other.accumulate = true;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "a residual added into bf16";
    other = d;
    other.precision = Precision::f32;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise(other)) << "float32 products";
}

// The fused pointwise FFN on AMX tiles: y += W2·gelu(W1·x + b1) + b2 against the same formula in
// double on the values the kernel takes (x in bf16, weights rounded to bf16); the kernel also
// rounds the hidden layer to bf16, 2^-9 relative at most. Block-sized and partial position
// counts, channel counts that fill the tiles and that do not, with and without the activation.
TEST(AmxPointwiseFfn, MatchesTheTwoProductsInDouble) {
    if (!kernels::amx::usable(false)) GTEST_SKIP() << "this CPU (or the kernel's permission) has no AMX-BF16 tiles";
    const auto bf16_values = [](const Tensor& t) { return Buffer(DType::bf16, std::vector<float>(t.f32(), t.f32() + t.elements())).values(); };
    // Whole tiles; S2's stage-0 shape, 80 → 240, padded to 96 and 256; few positions and many
    // (the work shared by columns and by blocks of positions), on one thread and on two.
    const auto cases = std::vector<std::tuple<int, int, Activation, int64_t, int>>{
        {64, 96, Activation::gelu, 32, 2},   {64, 96, Activation::gelu, 77, 2},   {64, 96, Activation::none, 5, 1},
        {80, 240, Activation::gelu, 70, 2},  {64, 96, Activation::gelu, 200, 2},  {80, 240, Activation::gelu, 150, 1},
        {320, 960, Activation::gelu, 90, 2}};
    for (const auto& [channels, hidden, activation, positions, threads] : cases) {
        const kernels::ThreadCountScope team(threads);
        kernels::PointwiseFfnDesc d;
        d.channels = channels;
        d.hidden = hidden;
        d.activation = activation;
        d.precision = Precision::bf16;
        d.input = DType::bf16;
        ASSERT_TRUE(kernels::amx::handles_pointwise_ffn(d));
        const Tensor w1 = random_tensor({hidden, channels, 1, 1}, 0.2f, 21), b1 = random_tensor({hidden}, 0.5f, 22);
        const Tensor w2 = random_tensor({channels, hidden}, 0.2f, 23), b2 = random_tensor({channels}, 0.5f, 24);
        Buffer x(DType::bf16, random_values(positions * channels, 2.0f, 25));
        const std::vector<float> y0 = random_values(positions * channels, 1.0f, 26);
        std::vector<float> y = y0;
        kernels::amx::make_pointwise_ffn(d, w1, b1, w2, b2)->run(x.data(), positions, y.data());

        const std::vector<float> xv = x.values(), w1v = bf16_values(w1), w2v = bf16_values(w2);
        std::vector<float> expected = y0;
        std::vector<double> layer(hidden);
        for (int64_t p = 0; p < positions; ++p) {
            for (int j = 0; j < hidden; ++j) {
                double sum = b1.f32()[j];
                for (int c = 0; c < channels; ++c) sum += static_cast<double>(w1v[j * channels + c]) * xv[p * channels + c];
                layer[j] = activate(activation, sum);
            }
            for (int c = 0; c < channels; ++c) {
                double sum = b2.f32()[c];
                for (int j = 0; j < hidden; ++j) sum += w2v[c * hidden + j] * layer[j];
                expected[p * channels + c] += static_cast<float>(sum);
            }
        }
        EXPECT_LE(relative_error(y, expected), 4e-3)
            << channels << " → " << hidden << ", " << positions << " positions, " << threads << " threads"
            << (activation == Activation::gelu ? ", GELU" : "");
    }
    kernels::PointwiseFfnDesc f32;
    f32.channels = 64;
    f32.hidden = 96;
    f32.input = DType::bf16;
    EXPECT_FALSE(kernels::amx::handles_pointwise_ffn(f32)) << "float32 products";
}

// The fused int8 FFN on AVX512-VNNI against its arithmetic written out here in double: x
// quantized per channel with the smoothed step (quantize_s8), the smoothed weights per output
// channel (quantize_rows_s8), exact integer sums, the hidden layer dequantized, through the
// kernel's GELU (whose own accuracy the next test checks) and quantized with its own
// calibration, and fc2's result added into y. Where the kernel's float dequantization and this
// double one fall on either side of a rounding boundary a hidden value differs by one step,
// which the bound allows for (measured: 3e-8 to 5e-5). Shapes: S0's
// stage 0 (many positions: the work shared by blocks, with a partial last block), S2's (80 →
// 240: chunks narrower than 64 outputs), few positions (shared by tiles, a partial tile),
// float32 and bf16 input, with and without smoothing, one thread and two.
TEST(Int8PointwiseFfn, MatchesTheQuantizedProductsInDouble) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    struct Case {
        int channels, hidden;
        Activation activation;
        int64_t positions;
        int threads;
        DType input;
        bool smoothed;
    };
    const Case cases[] = {{64, 192, Activation::gelu, 64 * 64 + 5, 2, DType::bf16, true}, {80, 240, Activation::gelu, 1000, 2, DType::f32, false},
                          {80, 240, Activation::gelu, 77, 2, DType::bf16, true},        {512, 1536, Activation::gelu, 64, 2, DType::bf16, true},
                          {64, 192, Activation::none, 13, 1, DType::f32, true},         {256, 768, Activation::gelu, 256, 1, DType::bf16, false},
                          {256, 768, Activation::gelu, 16 * 16, 2, DType::f32, true},   {128, 512, Activation::quick_gelu, 77, 2, DType::bf16, true},
                          {64, 256, Activation::quick_gelu, 1000, 2, DType::f32, false}};
    for (const Case& c : cases) {
        const kernels::ThreadCountScope team(c.threads);
        kernels::PointwiseFfnDesc d = int8_ffn_desc(c.channels, c.hidden, c.input, 2.5f, c.activation == Activation::none ? 5.0f : 3.0f);
        d.activation = c.activation;
        if (c.smoothed) {
            for (float v : random_values(c.channels, 0.5f, 31)) d.input_smoothing.push_back(1.0f + v);
            for (float v : random_values(c.hidden, 0.5f, 32)) d.hidden_smoothing.push_back(1.0f + v);
        }
        ASSERT_TRUE(kernels::avx512::handles_int8_pointwise_ffn(d));
        const Tensor w1 = random_tensor({c.hidden, c.channels, 1, 1}, 0.2f, 21), b1 = random_tensor({c.hidden}, 0.5f, 22);
        const Tensor w2 = random_tensor({c.channels, c.hidden}, 0.1f, 23), b2 = random_tensor({c.channels}, 0.5f, 24);
        Buffer x(c.input, random_values(c.positions * c.channels, 2.0f, 25));
        const std::vector<float> y0 = random_values(c.positions * c.channels, 1.0f, 26);
        std::vector<float> y = y0;
        kernels::avx512::make_int8_pointwise_ffn(d, w1, b1, w2, b2)->run(x.data(), c.positions, y.data());

        const auto quantized_weights = [](const Tensor& w, const std::vector<float>& smoothing, int rows, int cols) {
            const Tensor smoothed = smoothing.empty() ? w : kernels::smooth_input_channels(w, smoothing);
            return kernels::quantize_rows_s8(smoothed.f32(), rows, cols);
        };
        const kernels::RowQuantized q1 = quantized_weights(w1, d.input_smoothing, c.hidden, c.channels);
        const kernels::RowQuantized q2 = quantized_weights(w2, d.hidden_smoothing, c.channels, c.hidden);
        const std::vector<float> inverse1 = kernels::int8_inverse_steps(d.input_range, d.input_smoothing, c.channels);
        const std::vector<float> inverse2 = kernels::int8_inverse_steps(d.hidden_range, d.hidden_smoothing, c.hidden);
        const std::vector<float> xv = x.values();
        std::vector<float> expected = y0;
        std::vector<int> xq(c.channels), hq(c.hidden);
        for (int64_t p = 0; p < c.positions; ++p) {
            for (int k = 0; k < c.channels; ++k) xq[k] = kernels::quantize_s8(xv[p * c.channels + k], inverse1[k]);
            for (int j = 0; j < c.hidden; ++j) {
                int64_t sum = 0;
                for (int k = 0; k < c.channels; ++k) sum += int64_t{xq[k]} * q1.values[static_cast<size_t>(j) * c.channels + k];
                float h = static_cast<float>(sum * double{kernels::int8_step(d.input_range)} * q1.steps[j] + b1.f32()[j]);
                kernels::avx512::hidden_activation(c.activation, &h, 1, &h);
                hq[j] = kernels::quantize_s8(h, inverse2[j]);
            }
            for (int o = 0; o < c.channels; ++o) {
                int64_t sum = 0;
                for (int j = 0; j < c.hidden; ++j) sum += int64_t{hq[j]} * q2.values[static_cast<size_t>(o) * c.hidden + j];
                expected[p * c.channels + o] += static_cast<float>(sum * double{kernels::int8_step(d.hidden_range)} * q2.steps[o] + b2.f32()[o]);
            }
        }
        EXPECT_LE(relative_error(y, expected), 2e-4) << c.channels << " → " << c.hidden << ", " << c.positions << " positions, " << c.threads
                                                     << " threads, " << to_string(c.input) << (c.smoothed ? ", smoothed" : "")
                                                     << (c.activation == Activation::gelu ? ", GELU" : c.activation == Activation::quick_gelu ? ", QuickGELU" : "");
    }
}

namespace {

// The largest error of the kernel's hidden-layer `activation` against `exact` (in double) at
// every 1/steps_per_unit over [−limit, limit] and at ±100, each error divided by scale(x, exact),
// and where it lies.
template <typename Exact, typename Scale>
std::pair<double, float> worst_hidden_activation_error(Activation activation, int limit, int steps_per_unit, Exact exact, Scale scale) {
    std::vector<float> x;
    for (int i = -limit * steps_per_unit; i <= limit * steps_per_unit; ++i) x.push_back(static_cast<float>(i) / steps_per_unit);
    x.push_back(100.0f);
    x.push_back(-100.0f);
    std::vector<float> y(x.size());
    kernels::avx512::hidden_activation(activation, x.data(), static_cast<int64_t>(x.size()), y.data());
    std::pair<double, float> worst{0.0, 0.0f};
    for (size_t i = 0; i < x.size(); ++i) {
        const double expected = exact(double{x[i]});
        const double error = std::fabs(y[i] - expected) / scale(double{x[i]}, expected);
        if (error > worst.first) worst = {error, x[i]};
    }
    return worst;
}

}  // namespace

// The hidden layer's GELU (a table of cubics) against the exact GELU, every 1/1024 over [−8, 8]
// (the table's 32 intervals of [−5, 5], their ends, and beyond) and at ±100; beyond ±5, where Φ
// is held, the error may grow with |x|.
TEST(Int8PointwiseFfn, HiddenGeluIsWithinTwoMillionthsOfTheExactOne) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    const auto [worst, at] = worst_hidden_activation_error(
        Activation::gelu, 8, 1024, [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); },
        [](double x, double) { return std::max(1.0, std::fabs(x) / 5); });
    EXPECT_LE(worst, 2e-6) << "at " << at;
}

// The hidden layer's QuickGELU (x·σ(1.702·x) by an exponential and a refined reciprocal) against
// the exact one, every 1/256 over [−64, 64] (σ from 1e-47 to 1) and at ±100.
TEST(Int8PointwiseFfn, HiddenQuickGeluIsWithinAMillionthOfTheExactOne) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    const auto [worst, at] = worst_hidden_activation_error(
        Activation::quick_gelu, 64, 256, [](double x) { return x / (1.0 + std::exp(-1.702 * x)); },
        [](double, double exact) { return std::max(1.0, std::fabs(exact)); });
    EXPECT_LE(worst, 1e-6) << "at " << at;
}

// What the fused int8 FFN leaves to the two convolutions.
TEST(Int8PointwiseFfn, DeclinesWhatItIsNotBuiltFor) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    const kernels::PointwiseFfnDesc d = int8_ffn_desc(64, 192, DType::bf16, 1.0f, 1.0f);
    EXPECT_TRUE(kernels::avx512::handles_int8_pointwise_ffn(d));
    kernels::PointwiseFfnDesc other = d;
    other.hidden_range = 0;
    EXPECT_FALSE(kernels::avx512::handles_int8_pointwise_ffn(other)) << "the hidden layer not calibrated";
    other = d;
    other.input_range = 0;
    EXPECT_FALSE(kernels::avx512::handles_int8_pointwise_ffn(other)) << "the input not calibrated";
    other = d;
    other.hidden = 200;
    EXPECT_FALSE(kernels::avx512::handles_int8_pointwise_ffn(other)) << "a hidden count that is not a multiple of 16";
    other = d;
    other.precision = Precision::bf16;
    EXPECT_FALSE(kernels::avx512::handles_int8_pointwise_ffn(other)) << "bf16 products";
    other = d;
    other.activation = Activation::relu;
    EXPECT_FALSE(kernels::avx512::handles_int8_pointwise_ffn(other)) << "an activation it does not apply";
}

// The ConvFFN block in one operator against the int8 depthwise and FFN kernels run apart: the
// depthwise layer's output handed over as levels must leave every bit of the result as it was.
// Shapes: 16×16 on two threads (the FFN's ranges of positions), widths and heights that leave a
// partial tile (its padding rows), an 8×8 map (its split by tiles), 5×5 and 11×9 kernels, bf16
// and float32 between the two, inputs that saturate both quantizations, and a NaN and ±1e30 in x.
TEST(Int8DepthwiseFfn, MatchesTheTwoKernelsBitForBit) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    struct Case {
        int n, channels, hidden, h, w, kh, kw;
        DType between;
        bool smoothed;
        int threads;
    };
    const Case cases[] = {{1, 64, 192, 16, 16, 7, 7, DType::bf16, true, 2},  {2, 80, 240, 9, 11, 7, 7, DType::f32, false, 1},
                          {1, 32, 96, 8, 8, 5, 5, DType::bf16, true, 2},     {1, 16, 64, 12, 30, 11, 9, DType::f32, true, 2},
                          {3, 48, 144, 13, 7, 7, 7, DType::bf16, false, 2}};
    for (const Case& c : cases) {
        const kernels::ThreadCountScope team(c.threads);
        kernels::ConvDesc dw = int8_depthwise_desc(c.channels, c.kh, c.kw, 1.5f);  // x in [-2, 2]: some inputs saturate
        dw.output = c.between;
        // The FFN's input range below some of the depthwise layer's outputs: their levels saturate.
        kernels::PointwiseFfnDesc ffn = int8_ffn_desc(c.channels, c.hidden, c.between, 1.0f, 3.0f);
        if (c.smoothed) {
            for (float v : random_values(c.channels, 0.5f, 61)) dw.input_smoothing.push_back(1.0f + v);
            for (float v : random_values(c.channels, 0.5f, 62)) ffn.input_smoothing.push_back(1.0f + v);
            for (float v : random_values(c.hidden, 0.5f, 63)) ffn.hidden_smoothing.push_back(1.0f + v);
        }
        ASSERT_TRUE(kernels::avx512::handles_int8_depthwise_ffn(dw, ffn));
        const Tensor dw_weight = random_tensor({c.channels, 1, c.kh, c.kw}, 0.3f, 64), dw_bias = random_tensor({c.channels}, 0.5f, 65);
        const Tensor w1 = random_tensor({c.hidden, c.channels, 1, 1}, 0.2f, 66), b1 = random_tensor({c.hidden}, 0.5f, 67);
        const Tensor w2 = random_tensor({c.channels, c.hidden}, 0.1f, 68), b2 = random_tensor({c.channels}, 0.5f, 69);
        const int64_t positions = static_cast<int64_t>(c.n) * c.h * c.w;
        std::vector<float> x = random_values(positions * c.channels, 2.0f, 70);
        x[5] = std::nanf("");
        x[x.size() / 2] = 1e30f;
        x[x.size() - 3] = -1e30f;

        Buffer between(c.between, std::vector<float>(positions * c.channels));
        std::vector<float> expected = x;
        kernels::avx512::make_int8_depthwise_conv2d(dw, dw_weight, dw_bias)->run(x.data(), c.n, c.h, c.w, between.data());
        kernels::avx512::make_int8_pointwise_ffn(ffn, w1, b1, w2, b2)->run(between.data(), positions, expected.data());
        std::vector<float> y = x;
        kernels::avx512::make_int8_depthwise_ffn(dw, dw_weight, dw_bias, ffn, w1, b1, w2, b2)->add_to(y.data(), c.n, c.h, c.w);

        int64_t differing = 0, first = -1;
        for (size_t i = 0; i < y.size(); ++i) {
            if (std::memcmp(&y[i], &expected[i], sizeof(float)) != 0 && differing++ == 0) first = static_cast<int64_t>(i);
        }
        EXPECT_EQ(differing, 0) << c.channels << " channels, " << c.h << "x" << c.w << ", kernel " << c.kh << "x" << c.kw << ", "
                                << to_string(c.between) << " between, " << c.threads << " threads; first at " << first << ": " << y[first]
                                << " against " << expected[first];
    }
}

// What the block leaves to the two kernels (or to the graph's separate layers).
TEST(Int8DepthwiseFfn, DeclinesWhatItIsNotBuiltFor) {
    if (!kernels::avx512::vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    kernels::ConvDesc dw = int8_depthwise_desc(64, 7, 7, 1.0f);
    dw.output = DType::bf16;
    const kernels::PointwiseFfnDesc ffn = int8_ffn_desc(64, 192, DType::bf16, 1.0f, 1.0f);
    EXPECT_TRUE(kernels::avx512::handles_int8_depthwise_ffn(dw, ffn));
    kernels::ConvDesc other = dw;
    other.input_range = 0;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(other, ffn)) << "the depthwise layer not calibrated";
    other = dw;
    other.kernel_h = other.kernel_w = 3;
    other.pad_h = other.pad_w = 1;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(other, ffn)) << "a 3×3 depthwise layer: float32 (kernels.h)";
    other = dw;
    other.output = DType::f32;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(other, ffn)) << "float32 out of the depthwise layer, bf16 into the FFN";
    kernels::ConvDesc f32_dw = dw;
    f32_dw.output = DType::f32;
    kernels::PointwiseFfnDesc f32_ffn = ffn;
    f32_ffn.input = DType::f32;
    EXPECT_TRUE(kernels::avx512::handles_int8_depthwise_ffn(f32_dw, f32_ffn));
    other = f32_dw;
    other.accumulate = true;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(other, f32_ffn)) << "a residual added by the depthwise layer";
    other = int8_depthwise_desc(32, 7, 7, 1.0f);
    other.output = DType::bf16;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(other, ffn)) << "32 channels into an FFN of 64";
    kernels::PointwiseFfnDesc other_ffn = ffn;
    other_ffn.input_range = 0;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(dw, other_ffn)) << "the FFN's input not calibrated";
    other_ffn = ffn;
    other_ffn.precision = Precision::bf16;
    EXPECT_FALSE(kernels::avx512::handles_int8_depthwise_ffn(dw, other_ffn)) << "bf16 products in the FFN";
}

// Attention in double, out[i, h] = Σ_j softmax_j(q_i·k_j / √d) v_j, on packed projections
// [n, length, 3·heads·head_dim] given as float32 values.
std::vector<float> attention_in_double(const std::vector<float>& values, int n, int length, int heads, int head_dim, bool causal) {
    const int width = heads * head_dim;
    std::vector<float> expected(static_cast<size_t>(n) * length * width);
    std::vector<double> p(length);
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    for (int b = 0; b < n; ++b) {
        const auto at = [&](int position, int part, int head, int j) {
            return static_cast<double>(values[(static_cast<size_t>(b) * length + position) * 3 * width + part * width + head * head_dim + j]);
        };
        for (int h = 0; h < heads; ++h) {
            for (int i = 0; i < length; ++i) {
                const int visible = causal ? i + 1 : length;
                double top = -1e300, sum = 0;
                for (int key = 0; key < visible; ++key) {
                    double s = 0;
                    for (int j = 0; j < head_dim; ++j) s += at(i, 0, h, j) * at(key, 1, h, j);
                    p[key] = s * scale;
                    top = std::max(top, p[key]);
                }
                for (int key = 0; key < visible; ++key) sum += p[key] = std::exp(p[key] - top);
                for (int j = 0; j < head_dim; ++j) {
                    double o = 0;
                    for (int key = 0; key < visible; ++key) o += p[key] / sum * at(key, 2, h, j);
                    expected[(static_cast<size_t>(b) * length + i) * width + h * head_dim + j] = static_cast<float>(o);
                }
            }
        }
    }
    return expected;
}

struct AttentionKernelCase {
    int n, length, heads, head_dim;
    bool causal;
    DType input, output;
    int threads;
};

std::string describe(const AttentionKernelCase& c) {
    return std::to_string(c.n) + " × " + std::to_string(c.length) + " positions, " + std::to_string(c.heads) + " heads of " +
           std::to_string(c.head_dim) + (c.causal ? ", causal" : "") + ", " + to_string(c.input) + " in, " + to_string(c.output) + " out, " +
           std::to_string(c.threads) + " threads";
}

// Text, ViT and MCi shapes, partial tiles (17 and 50 positions, 197 over several key blocks), one
// position, heads 96 wide, causal masks, float32 and bf16 in and out, batches, on one thread and
// on two.
const AttentionKernelCase kAttentionKernelCases[] = {
    {1, 77, 8, 64, false, DType::f32, DType::bf16, 2}, {2, 77, 8, 64, true, DType::f32, DType::bf16, 2},
    {3, 64, 16, 32, false, DType::bf16, DType::f32, 2}, {1, 50, 12, 64, false, DType::f32, DType::f32, 1},
    {2, 197, 12, 64, true, DType::bf16, DType::bf16, 2}, {1, 1, 2, 32, false, DType::f32, DType::f32, 2},
    {2, 17, 3, 96, true, DType::f32, DType::f32, 1}};

// Attention on AMX tiles against the same formula in double on the values the kernel takes (q, k
// and v rounded to bf16); the kernel also rounds the probabilities to bf16, 2^-9 relative at
// most.
TEST(AmxAttention, MatchesTheFormulaInDouble) {
    if (!kernels::amx::usable(false)) GTEST_SKIP() << "this CPU (or the kernel's permission) has no AMX-BF16 tiles";
    for (const AttentionKernelCase& c : kAttentionKernelCases) {
        const kernels::ThreadCountScope team(c.threads);
        kernels::AttentionDesc d{c.heads, c.head_dim, c.causal, Precision::bf16, c.input, c.output};
        ASSERT_TRUE(kernels::amx::handles_attention(d));
        const int width = c.heads * c.head_dim;
        Buffer qkv(c.input, random_values(static_cast<int64_t>(c.n) * c.length * 3 * width, 2.0f, 41));
        Buffer out(c.output, std::vector<float>(static_cast<size_t>(c.n) * c.length * width, 0.0f));
        kernels::amx::make_attention(d)->run(qkv.data(), c.n, c.length, out.data());
        const std::vector<float> expected = attention_in_double(Buffer(DType::bf16, qkv.values()).values(), c.n, c.length, c.heads, c.head_dim, c.causal);
        EXPECT_LE(relative_error(out.values(), expected), c.output == DType::bf16 ? 5e-3 : 3e-3) << describe(c);
    }
    EXPECT_FALSE(kernels::amx::handles_attention({8, 64, false, Precision::f32, DType::f32, DType::f32})) << "float32 products";
    EXPECT_FALSE(kernels::amx::handles_attention({2, 8, false, Precision::bf16, DType::f32, DType::f32})) << "heads 8 wide";
}

// The float32 AVX-512 kernel against the formula in double on the values it takes: float32
// rounding alone where it writes float32, bf16's where it writes bf16.
TEST(Avx512Attention, MatchesTheFormulaInDouble) {
    if (!kernels::avx512::cpu_supported()) GTEST_SKIP() << "this CPU has no AVX512F/BW/VL";
    for (const AttentionKernelCase& c : kAttentionKernelCases) {
        const kernels::ThreadCountScope team(c.threads);
        kernels::AttentionDesc d{c.heads, c.head_dim, c.causal, Precision::f32, c.input, c.output};
        ASSERT_TRUE(kernels::avx512::handles_attention(d));
        const int width = c.heads * c.head_dim;
        Buffer qkv(c.input, random_values(static_cast<int64_t>(c.n) * c.length * 3 * width, 2.0f, 41));
        Buffer out(c.output, std::vector<float>(static_cast<size_t>(c.n) * c.length * width, 0.0f));
        kernels::avx512::make_attention(d)->run(qkv.data(), c.n, c.length, out.data());
        const std::vector<float> expected = attention_in_double(qkv.values(), c.n, c.length, c.heads, c.head_dim, c.causal);
        EXPECT_LE(relative_error(out.values(), expected), c.output == DType::bf16 ? 4e-3 : 1e-5) << describe(c);
    }
    EXPECT_FALSE(kernels::avx512::handles_attention({2, 8, false, Precision::f32, DType::f32, DType::f32})) << "heads 8 wide";
    EXPECT_FALSE(kernels::avx512::handles_attention({2, 32, false, Precision::f32, DType::f16, DType::f32})) << "float16 input";
}

// A registered backend (by name) and a case.
template <typename Case>
class BackendOp : public ::testing::TestWithParam<std::tuple<std::string, Case>> {
protected:
    const std::string& name() const { return std::get<0>(this->GetParam()); }
    const Case& shape() const { return std::get<1>(this->GetParam()); }
};

template <typename Case>
std::string backend_case_name(const ::testing::TestParamInfo<std::tuple<std::string, Case>>& info) {
    return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
}

using BackendConvOp = BackendOp<ConvCase>;

TEST_P(BackendConvOp, MatchesReferenceInFloat32) {
    BACKEND_OR_SKIP(backend, name(), Precision::f32);
    const ConvCase& c = shape();
    const ConvRun r = make_conv_inputs(c);
    const auto expected = run_conv(kernels::reference_backend(), describe(c), c, r);
    kernels::ConvDesc d = describe(c);
    EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), 1e-5) << "no typical input";
    // Weights packed for another input size must give the same result on this one.
    d.typical_batch = 1;
    d.typical_h = c.h + 3;
    d.typical_w = c.w + 1;
    EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), 1e-5) << "packed for another size";
    d.typical_batch = c.n;
    d.typical_h = c.h;
    d.typical_w = c.w;
    EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), 1e-5) << "packed for this size";
}

// bf16: inputs and weights rounded to bf16, sums in float32; the buffers between layers may be
// bf16 too. Both backends round the same values, so they differ only by summation order and the
// rounding of a bf16 output (2^-9 relative).
TEST_P(BackendConvOp, MatchesReferenceInBf16) {
    BACKEND_OR_SKIP(backend, name(), Precision::bf16);
    const ConvCase& c = shape();
    const ConvRun r = make_conv_inputs(c);
    for (DType input : {DType::f32, DType::bf16}) {
        for (DType output : {DType::f32, DType::bf16}) {
            kernels::ConvDesc d = describe(c);
            d.precision = Precision::bf16;
            d.input = input;
            d.output = output;
            d.typical_batch = c.n;
            d.typical_h = c.h;
            d.typical_w = c.w;
            const auto expected = run_conv(kernels::reference_backend(), d, c, r);
            EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), output == DType::bf16 ? 8e-3 : 1e-3)
                << "input " << to_string(input) << " output " << to_string(output);
        }
    }
    // And bf16 stays close to the exact result (the precision mode's whole error).
    kernels::ConvDesc d = describe(c);
    d.precision = Precision::bf16;
    EXPECT_LE(relative_error(run_conv(*backend, d, c, r), naive_conv(c, r.x, r.weight, r.bias, r.y0)), 1e-2);
}

// The layer `backend` builds for `d`, run, and the reference backend's emulation of what that
// layer says it computes (a backend may run a layer int8 could serve in float32).
std::pair<std::vector<float>, std::vector<float>> run_conv_and_emulation(kernels::Backend& backend, const kernels::ConvDesc& d,
                                                                         const ConvCase& c, const ConvRun& r) {
    const kernels::ConvDesc built = backend.make_conv2d(d, r.weight, r.bias)->desc();
    return {run_conv(backend, d, c, r), run_conv(kernels::reference_backend(), as_emulated(backend, built), c, r)};
}

// int8: both backends quantize the same values to the same integers (weights per output channel,
// the input with the step of its range; beyond the range it saturates), so they differ only by
// summation order and output rounding (except where the weights are halved, int8_weights_halved).
// Layers int8 does not serve (strided or multiplying depthwise ones, few input channels) run in
// the int8 companion instead, depthwise ones in float32.
TEST_P(BackendConvOp, MatchesReferenceInInt8) {
    BACKEND_OR_SKIP(backend, name(), Precision::int8);
    const ConvCase& c = shape();
    const ConvRun r = make_conv_inputs(c);
    const auto exact = naive_conv(c, r.x, r.weight, r.bias, r.y0);
    kernels::ConvDesc d = describe(c);
    d.precision = Precision::int8;
    d.input_range = 1.0f;  // x is uniform in [-1, 1]
    const bool int8 = kernels::compute_precision(d) == Precision::int8;
    const bool halved = int8_weights_halved(name());
    const bool large_depthwise = d.depthwise() && c.out == c.in && c.stride == 1 && std::min(c.kh, c.kw) >= kernels::kMinInt8DepthwiseKernel;
    EXPECT_EQ(int8, (d.groups == 1 && d.in_channels >= kernels::kMinInt8Channels) || large_depthwise);
    // The whole error of the mode: 8-bit steps of x and of each output channel's weights.
    EXPECT_LE(relative_error(run_conv(*backend, d, c, r), exact), 2e-2);
    for (float range : {1.0f, 0.5f}) {  // 0.5: half the inputs saturate
        for (DType input : {DType::f32, DType::bf16}) {
            for (DType output : {DType::f32, DType::bf16}) {
                d.input_range = range;
                d.input = input;
                d.output = output;
                const auto [ours, expected] = run_conv_and_emulation(*backend, d, c, r);
                EXPECT_LE(relative_error(ours, expected), int8 && halved ? 1.5e-2 : output == DType::bf16 ? 8e-3 : 1e-3)
                    << "range " << range << " input " << to_string(input) << " output " << to_string(output);
            }
        }
    }
    if (!int8) return;
    // Smoothed: x_c / s_c against W[:, c]·s_c, the same product; |x / s| ≤ 2 with s in [0.5, 2].
    d.input = d.output = DType::f32;
    d.input_smoothing = smoothing_for(c.in);
    d.input_range = 2.0f;
    const auto [smoothed, emulated] = run_conv_and_emulation(*backend, d, c, r);
    EXPECT_LE(relative_error(smoothed, exact), 3e-2) << "smoothed";
    EXPECT_LE(relative_error(smoothed, emulated), halved ? 3e-2 : 1e-3) << "smoothed";
}

INSTANTIATE_TEST_SUITE_P(Shapes, BackendConvOp, ::testing::Combine(::testing::ValuesIn(backend_names()), ::testing::ValuesIn(conv_cases())),
                         backend_case_name<ConvCase>);

TEST(Precision, Int8OnlyWhereItPaysAndIsCalibrated) {
    kernels::ConvDesc pointwise;
    pointwise.in_channels = pointwise.out_channels = 64;
    pointwise.precision = Precision::int8;
    EXPECT_EQ(kernels::compute_precision(pointwise), Precision::bf16) << "no calibrated range";
    pointwise.input_range = 3.0f;
    EXPECT_EQ(kernels::compute_precision(pointwise), Precision::int8);
    kernels::ConvDesc depthwise = pointwise;
    depthwise.groups = 64;
    depthwise.kernel_h = depthwise.kernel_w = 7;
    EXPECT_EQ(kernels::compute_precision(depthwise), Precision::int8);
    depthwise.kernel_h = depthwise.kernel_w = 3;
    EXPECT_EQ(kernels::compute_precision(depthwise), Precision::f32) << "3×3 depthwise: float32";
    depthwise.kernel_h = depthwise.kernel_w = 7;
    depthwise.stride_h = depthwise.stride_w = 2;
    EXPECT_EQ(kernels::compute_precision(depthwise), Precision::f32) << "strided depthwise: float32, not the companion";
    depthwise.stride_h = depthwise.stride_w = 1;
    depthwise.out_channels = 128;
    EXPECT_EQ(kernels::compute_precision(depthwise), Precision::f32) << "channel multiplier 2";
    kernels::ConvDesc stem = pointwise;
    stem.in_channels = 3;
    EXPECT_EQ(kernels::compute_precision(stem), Precision::bf16);
    pointwise.precision = Precision::f32;
    EXPECT_EQ(kernels::compute_precision(pointwise), Precision::f32) << "the range alone changes nothing";
    kernels::LinearDesc linear;
    linear.in_features = 8;
    linear.precision = Precision::int8;
    EXPECT_EQ(kernels::compute_precision(linear), Precision::bf16);
    linear.input_range = 1.0f;
    EXPECT_EQ(kernels::compute_precision(linear), Precision::int8);
    EXPECT_EQ(kernels::parse_precision("int8"), Precision::int8);
    EXPECT_THROW(kernels::parse_precision("int4"), Error);
    for (const std::string& name : kernels::precision_names()) EXPECT_EQ(kernels::to_string(kernels::parse_precision(name)), name);
}

TEST(Precision, QuantizationRoundsHalfToEvenAndSaturates) {
    EXPECT_EQ(kernels::quantize_s8(2.5f, 1.0f), 2);
    EXPECT_EQ(kernels::quantize_s8(3.5f, 1.0f), 4);
    EXPECT_EQ(kernels::quantize_s8(-0.5f, 1.0f), 0);
    EXPECT_EQ(kernels::quantize_s8(1000.0f, 1.0f), 127);
    EXPECT_EQ(kernels::quantize_s8(-1000.0f, 1.0f), -128);
    const std::vector<float> w = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f, 2.0f, 1.0f, -2.0f};
    const kernels::RowQuantized q = kernels::quantize_rows_s8(w.data(), 3, 3);
    EXPECT_EQ(q.steps, (std::vector<float>{1.0f / 127, 1.0f, 2.0f / 127}));  // an all-zero row gets step 1
    EXPECT_EQ(q.values, (std::vector<int8_t>{64, -127, 32, 0, 0, 0, 127, 64, -127}));
    // Even levels (for kernels that halve the weights): twice the step onto [−63, 63], doubled;
    // 0.6·63 = 37.8 rounds to 38, 0.25·63 = 15.75 to 16.
    const std::vector<float> w2 = {0.6f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f, 2.0f, 1.2f, -2.0f};
    const kernels::RowQuantized even = kernels::quantize_rows_s8(w2.data(), 3, 3, true);
    EXPECT_EQ(even.steps, (std::vector<float>{1.0f / 126, 1.0f, 2.0f / 126}));
    EXPECT_EQ(even.values, (std::vector<int8_t>{76, -126, 32, 0, 0, 0, 126, 76, -126}));
    // Against rounding 8-bit levels a second time (what halving them does): every value within
    // half a 7-bit step of w, and over many weights a smaller mean square error.
    const std::vector<float> many = random_values(64 * 96, 1.0f, 11);
    const kernels::RowQuantized full = kernels::quantize_rows_s8(many.data(), 64, 96);
    const kernels::RowQuantized halved = kernels::quantize_rows_s8(many.data(), 64, 96, true);
    double twice_rounded = 0, once = 0;
    for (size_t i = 0; i < many.size(); ++i) {
        const float step = halved.steps[i / 96];
        EXPECT_EQ(halved.values[i] % 2, 0);
        EXPECT_LE(std::fabs(halved.values[i] * step - many[i]), step * (1 + 1e-4f)) << i;
        once += std::pow(halved.values[i] * step - many[i], 2);
        const int halved_level = static_cast<int>(std::nearbyint(full.values[i] * 0.5f));
        twice_rounded += std::pow(2 * halved_level * full.steps[i / 96] - many[i], 2);
    }
    EXPECT_LT(once, 0.75 * twice_rounded);
}

struct LinearCase {
    std::string name;
    int rows, in, out;
    Activation activation;
    bool accumulate;
};

void PrintTo(const LinearCase& c, std::ostream* os) { *os << c.name; }

using LinearOp = BackendOp<LinearCase>;

std::vector<float> naive_linear(const LinearCase& c, const std::vector<float>& x, const Tensor& w, const Tensor& b,
                                const std::vector<float>& y0) {
    std::vector<float> y(static_cast<size_t>(c.rows) * c.out);
    for (int r = 0; r < c.rows; ++r) {
        for (int o = 0; o < c.out; ++o) {
            double sum = b.f32()[o];
            for (int i = 0; i < c.in; ++i) sum += static_cast<double>(x[static_cast<size_t>(r) * c.in + i]) * w.f32()[static_cast<size_t>(o) * c.in + i];
            const size_t at = static_cast<size_t>(r) * c.out + o;
            y[at] = static_cast<float>(activate(c.activation, sum) + (c.accumulate ? y0[at] : 0.0));
        }
    }
    return y;
}

// Random inputs of a linear case (fixed seeds): x [rows, in], W [out, in], b [out], y0 [rows, out].
struct LinearRun {
    std::vector<float> x, y0;
    Tensor w, b;
};

LinearRun make_linear_inputs(const LinearCase& c) {
    return {random_values(static_cast<int64_t>(c.rows) * c.in, 1.0f, 21), random_values(static_cast<int64_t>(c.rows) * c.out, 1.0f, 24),
            random_tensor({c.out, c.in}, 0.2f, 22), random_tensor({c.out}, 0.5f, 23)};
}

std::vector<float> run_linear(kernels::Backend& backend, const kernels::LinearDesc& d, const LinearCase& c, const LinearRun& r) {
    const auto linear = backend.make_linear(d, r.w, r.b);
    Buffer xb(d.input, r.x), yb(d.output, r.y0);
    linear->run(xb.data(), c.rows, yb.data());
    return yb.values();
}

TEST_P(LinearOp, MatchesNaiveProductInFloat32) {
    BACKEND_OR_SKIP(backend, name(), Precision::f32);
    const LinearCase& c = shape();
    const LinearRun r = make_linear_inputs(c);
    const auto expected = naive_linear(c, r.x, r.w, r.b, r.y0);
    kernels::LinearDesc d{c.in, c.out, c.activation, c.accumulate};
    EXPECT_LE(relative_error(run_linear(*backend, d, c, r), expected), 1e-5) << "no typical rows";
    d.typical_rows = c.rows + 5;
    EXPECT_LE(relative_error(run_linear(*backend, d, c, r), expected), 1e-5) << "packed for other rows";
}

TEST_P(LinearOp, MatchesEmulationAndNaiveProductInBf16) {
    BACKEND_OR_SKIP(backend, name(), Precision::bf16);
    const LinearCase& c = shape();
    const LinearRun r = make_linear_inputs(c);
    const auto expected = naive_linear(c, r.x, r.w, r.b, r.y0);
    kernels::LinearDesc d{c.in, c.out, c.activation, c.accumulate};
    d.precision = Precision::bf16;
    d.typical_rows = c.rows;
    for (DType input : {DType::f32, DType::bf16}) {
        for (DType output : {DType::f32, DType::bf16}) {
            d.input = input;
            d.output = output;
            const auto ours = run_linear(*backend, d, c, r);
            EXPECT_LE(relative_error(ours, expected), 1e-2) << to_string(input) << "->" << to_string(output);
            const auto emulated = run_linear(kernels::reference_backend(), d, c, r);
            EXPECT_LE(relative_error(ours, emulated), output == DType::bf16 ? 8e-3 : 1e-3) << "vs emulated bf16";
        }
    }
}

TEST_P(LinearOp, Int8MatchesEmulationAndStaysNearTheExactProduct) {
    BACKEND_OR_SKIP(backend, name(), Precision::int8);
    const bool halved = int8_weights_halved(name());
    const LinearCase& c = shape();
    const LinearRun r = make_linear_inputs(c);
    const auto exact = naive_linear(c, r.x, r.w, r.b, r.y0);
    kernels::LinearDesc d;
    d.in_features = c.in;
    d.out_features = c.out;
    d.activation = c.activation;
    d.accumulate = c.accumulate;
    d.precision = Precision::int8;
    d.input_range = 1.0f;
    EXPECT_LE(relative_error(run_linear(*backend, d, c, r), exact), 2e-2);
    for (DType input : {DType::f32, DType::bf16}) {
        for (DType output : {DType::f32, DType::bf16}) {
            d.input = input;
            d.output = output;
            d.input_range = 0.5f;
            const auto emulated = run_linear(kernels::reference_backend(), d, c, r);
            EXPECT_LE(relative_error(run_linear(*backend, d, c, r), emulated), halved ? 1.5e-2 : output == DType::bf16 ? 8e-3 : 1e-3)
                << "int8 " << to_string(input) << "->" << to_string(output);
            d.input_smoothing = smoothing_for(c.in);
            d.input_range = 2.0f;
            const auto smoothed = run_linear(*backend, d, c, r);
            EXPECT_LE(relative_error(smoothed, exact), 3e-2) << "smoothed " << to_string(input) << "->" << to_string(output);
            EXPECT_LE(relative_error(smoothed, run_linear(kernels::reference_backend(), d, c, r)), halved ? 3e-2 : output == DType::bf16 ? 8e-3 : 1e-3)
                << "smoothed int8 " << to_string(input) << "->" << to_string(output);
            d.input_smoothing.clear();
        }
    }
}

// What smoothing is for: one input channel 50× the others sets the int8 step of the whole input
// and drowns the rest; divided by its factor (weights multiplied by it), the step fits them all.
// The reference backend's emulation computes exactly what int8 hardware does.
TEST(Int8Smoothing, ShrinksTheErrorOfAnOutlierChannel) {
    const LinearCase c{"outlier_channel", 64, 96, 32, Activation::none, false};
    LinearRun r = make_linear_inputs(c);
    for (int row = 0; row < c.rows; ++row) r.x[static_cast<size_t>(row) * c.in] *= 50.0f;
    const auto exact = naive_linear(c, r.x, r.w, r.b, r.y0);
    kernels::LinearDesc d;
    d.in_features = c.in;
    d.out_features = c.out;
    d.precision = Precision::int8;
    d.input_range = 50.0f;
    const double plain = relative_error(run_linear(kernels::reference_backend(), d, c, r), exact);
    // s_c = sqrt(max|x_c| / max|W[:, c]|), as calibration computes it.
    std::vector<float> factors(c.in);
    d.input_range = 0;
    for (int ch = 0; ch < c.in; ++ch) {
        float x_max = 0, w_max = 0;
        for (int row = 0; row < c.rows; ++row) x_max = std::max(x_max, std::fabs(r.x[static_cast<size_t>(row) * c.in + ch]));
        for (int o = 0; o < c.out; ++o) w_max = std::max(w_max, std::fabs(r.w.f32()[static_cast<size_t>(o) * c.in + ch]));
        factors[ch] = std::sqrt(x_max / w_max);
        d.input_range = std::max(d.input_range, x_max / factors[ch]);
    }
    d.input_smoothing = factors;
    const double smoothed = relative_error(run_linear(kernels::reference_backend(), d, c, r), exact);
    std::printf("int8 error with an outlier channel: %.3g plain, %.3g smoothed\n", plain, smoothed);
    EXPECT_LT(smoothed, plain / 3);
    EXPECT_LE(smoothed, 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearOp,
                         ::testing::Combine(::testing::ValuesIn(backend_names()),
                                            ::testing::Values(LinearCase{"single_row", 1, 7, 5, Activation::none, false},
                                                              LinearCase{"odd_sizes_gelu", 13, 33, 17, Activation::gelu, false},
                                                              LinearCase{"sequence_residual", 77, 64, 96, Activation::none, true},
                                                              LinearCase{"relu_wide", 9, 128, 300, Activation::relu, true},
                                                              LinearCase{"quick_gelu_tokens", 50, 64, 256, Activation::quick_gelu, false})),
                         backend_case_name<LinearCase>);

struct AttentionCase {
    std::string name;
    int n, length, heads, head_dim;
    bool causal;
};

void PrintTo(const AttentionCase& c, std::ostream* os) { *os << c.name; }

using AttentionOp = BackendOp<AttentionCase>;

// A backend's batched attention against ops.h's single-sequence attention (itself checked
// against a naive version in test_ops).
void expect_attention_matches(kernels::Backend& backend, const AttentionCase& c, Precision precision, double tolerance) {
    const int width = c.heads * c.head_dim;
    const auto qkv = random_values(static_cast<int64_t>(c.n) * c.length * 3 * width, 2.0f, 31);
    std::vector<float> expected(static_cast<size_t>(c.n) * c.length * width);
    for (int b = 0; b < c.n; ++b) {
        kernels::multi_head_attention(qkv.data() + static_cast<size_t>(b) * c.length * 3 * width, c.length, c.heads, c.head_dim,
                                      c.causal, expected.data() + static_cast<size_t>(b) * c.length * width);
    }
    const DType narrow = precision == Precision::bf16 ? DType::bf16 : DType::f32;
    const auto attention = backend.make_attention({c.heads, c.head_dim, c.causal, precision, narrow, narrow});
    Buffer in(narrow, qkv), out(narrow, std::vector<float>(expected.size(), 0.0f));
    attention->run(in.data(), c.n, c.length, out.data());
    EXPECT_LE(relative_error(out.values(), expected), tolerance) << kernels::to_string(precision);
}

TEST_P(AttentionOp, MatchesTheSharedOperatorInFloat32) {
    BACKEND_OR_SKIP(backend, name(), Precision::f32);
    expect_attention_matches(*backend, shape(), Precision::f32, 1e-5);
}

TEST_P(AttentionOp, MatchesTheSharedOperatorInBf16) {
    BACKEND_OR_SKIP(backend, name(), Precision::bf16);
    expect_attention_matches(*backend, shape(), Precision::bf16, 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionOp,
                         ::testing::Combine(::testing::ValuesIn(backend_names()),
                                            ::testing::Values(AttentionCase{"one_token", 1, 1, 2, 8, false},
                                                              AttentionCase{"odd_sizes_batch3", 3, 13, 3, 5, false},
                                                              AttentionCase{"causal_batch2", 2, 77, 8, 64, true},
                                                              AttentionCase{"image_tokens", 2, 64, 16, 32, false},
                                                              // 4.3 MB of scores per sequence: run one sequence at a time
                                                              AttentionCase{"long_sequences_one_at_a_time", 3, 300, 12, 8, true})),
                         backend_case_name<AttentionCase>);

class EveryBackend : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryBackend, RejectsWeightsThatDoNotMatchTheDescription) {
    BACKEND_OR_SKIP(backend, GetParam(), Precision::f32);
    kernels::ConvDesc d;
    d.in_channels = 4;
    d.out_channels = 6;
    d.kernel_h = d.kernel_w = 3;
    EXPECT_THROW(backend->make_conv2d(d, random_tensor({6, 4, 1, 1}, 1.0f, 1), Tensor()), Error);
    kernels::ConvDesc grouped = d;
    grouped.groups = 4;
    EXPECT_THROW(backend->make_conv2d(grouped, random_tensor({6, 1, 3, 3}, 1.0f, 1), Tensor()), Error);
    EXPECT_THROW(backend->make_linear({4, 6}, random_tensor({4, 6}, 1.0f, 1), Tensor()), Error);
}

// The registry describes each backend consistently and backend_by_name follows it.
TEST_P(EveryBackend, IsDescribedAndFoundByName) {
    const kernels::BackendEntry& entry = backend_entry(GetParam());
    if (!entry.available) {
        EXPECT_FALSE(entry.unavailable_reason.empty());
        EXPECT_EQ(entry.backend, nullptr);
        try {
            kernels::backend_by_name(entry.name);
            ADD_FAILURE() << entry.name << " is unavailable but backend_by_name returned it";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(entry.unavailable_reason), std::string::npos) << e.what();
        }
        return;
    }
    ASSERT_NE(entry.backend, nullptr);
    EXPECT_EQ(entry.backend->name(), entry.name);
    EXPECT_EQ(&kernels::backend_by_name(entry.name), entry.backend);
    EXPECT_TRUE(entry.runs(Precision::f32));
    EXPECT_FALSE(entry.instruction_sets.empty());
    for (Precision p : {Precision::f32, Precision::bf16, Precision::int8}) {
        const bool native = std::find(entry.native_precisions.begin(), entry.native_precisions.end(), p) != entry.native_precisions.end();
        EXPECT_EQ(native, entry.backend->native(p)) << kernels::to_string(p);
        if (native) {
            EXPECT_TRUE(entry.runs(p)) << kernels::to_string(p) << " is native but not run";
        }
    }
    // `auto` never picks an emulated bf16 (the reference backend's is several times slower).
    if (entry.backend->bf16_is_faster()) {
        EXPECT_TRUE(entry.backend->native(Precision::bf16));
    }
    EXPECT_EQ(kernels::fastest_precision(*entry.backend), entry.backend->bf16_is_faster() ? Precision::bf16 : Precision::f32);
}

INSTANTIATE_TEST_SUITE_P(Registered, EveryBackend, ::testing::ValuesIn(backend_names()),
                         [](const auto& info) { return info.param; });

TEST(BackendRegistry, ListsReferenceAndOnednnAndRefusesUnknownNames) {
    const auto names = backend_names();
    EXPECT_NE(std::find(names.begin(), names.end(), "reference"), names.end());
    EXPECT_NE(std::find(names.begin(), names.end(), "onednn"), names.end());
    EXPECT_EQ(&kernels::backend_by_name("auto"), &kernels::default_backend());
    try {
        kernels::backend_by_name("cuda");
        ADD_FAILURE() << "an unknown backend name was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("reference"), std::string::npos) << "the message lists the known names: " << e.what();
    }
}

}  // namespace
