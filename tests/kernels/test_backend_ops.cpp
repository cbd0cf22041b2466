// Per-operator tests of the kernel backends on random inputs (fixed seeds) and awkward shapes:
// the reference backend against a naive direct convolution / matrix product written here, and
// every other backend against the reference backend, in float32, bf16 and int8 precision.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
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

// The backend of that name, or null where this build or CPU lacks it.
kernels::Backend* available_backend(const char* name) {
    try {
        return &kernels::backend_by_name(name);
    } catch (const Error&) {
        return nullptr;
    }
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
    return v;
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
        {"depthwise_multiplier2_7x7_stride2", 2, 16, 32, 13, 12, 7, 7, 2, 16, Activation::gelu, false},
        {"depthwise_multiplier2_3x3_odd", 1, 5, 10, 6, 6, 3, 3, 1, 5, Activation::none, false},
        {"depthwise_stride2_gelu_batch3", 3, 16, 16, 10, 9, 3, 3, 2, 16, Activation::gelu, true},
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

TEST_P(ConvOp, EveryBackendMatchesReferenceInFloat32) {
    const ConvCase& c = GetParam();
    const ConvRun r = make_conv_inputs(c);
    const auto expected = run_conv(kernels::reference_backend(), describe(c), c, r);
    for (const char* name : {"onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        kernels::ConvDesc d = describe(c);
        EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), 1e-5) << name << ", no typical input";
        // Weights packed for another input size must give the same result on this one.
        d.typical_batch = 1;
        d.typical_h = c.h + 3;
        d.typical_w = c.w + 1;
        EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), 1e-5) << name << ", packed for another size";
        d.typical_batch = c.n;
        d.typical_h = c.h;
        d.typical_w = c.w;
        EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), 1e-5) << name << ", packed for this size";
    }
}

// bf16: inputs and weights rounded to bf16, sums in float32; the buffers between layers may be
// bf16 too. Both backends round the same values, so they differ only by summation order and the
// rounding of a bf16 output (2^-9 relative).
TEST_P(ConvOp, EveryBackendMatchesReferenceInBf16) {
    const ConvCase& c = GetParam();
    const ConvRun r = make_conv_inputs(c);
    for (const char* name : {"onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        if (!backend->native(Precision::bf16)) continue;
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
                    << name << " input " << to_string(input) << " output " << to_string(output);
            }
        }
        // And bf16 stays close to the exact result (the precision mode's whole error).
        kernels::ConvDesc d = describe(c);
        d.precision = Precision::bf16;
        EXPECT_LE(relative_error(run_conv(*backend, d, c, r), naive_conv(c, r.x, r.weight, r.bias, r.y0)), 1e-2) << name;
    }
}

// int8: both backends quantize the same values to the same integers (weights per output channel,
// the input with the step of its range; beyond the range it saturates), so they differ only by
// summation order and output rounding. Layers int8 does not serve (depthwise, few input
// channels) run bf16 instead.
TEST_P(ConvOp, EveryBackendMatchesReferenceInInt8) {
    const ConvCase& c = GetParam();
    const ConvRun r = make_conv_inputs(c);
    const auto exact = naive_conv(c, r.x, r.weight, r.bias, r.y0);
    for (const char* name : {"reference", "onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        if (std::string(name) != "reference" && !backend->native(Precision::int8)) continue;
        kernels::ConvDesc d = describe(c);
        d.precision = Precision::int8;
        d.input_range = 1.0f;  // x is uniform in [-1, 1]
        const bool int8 = kernels::compute_precision(d) == Precision::int8;
        EXPECT_EQ(int8, d.groups == 1 && d.in_channels >= kernels::kMinInt8Channels) << name;
        // The whole error of the mode: 8-bit steps of x and of each output channel's weights.
        EXPECT_LE(relative_error(run_conv(*backend, d, c, r), exact), 2e-2) << name;
        if (std::string(name) == "reference") continue;
        for (float range : {1.0f, 0.5f}) {  // 0.5: half the inputs saturate
            for (DType input : {DType::f32, DType::bf16}) {
                for (DType output : {DType::f32, DType::bf16}) {
                    d.input_range = range;
                    d.input = input;
                    d.output = output;
                    const auto expected = run_conv(kernels::reference_backend(), d, c, r);
                    EXPECT_LE(relative_error(run_conv(*backend, d, c, r), expected), output == DType::bf16 ? 8e-3 : 1e-3)
                        << name << " range " << range << " input " << to_string(input) << " output " << to_string(output);
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvOp, ::testing::ValuesIn(conv_cases()), [](const auto& info) { return info.param.name; });

TEST(Precision, Int8OnlyWhereItPaysAndIsCalibrated) {
    kernels::ConvDesc pointwise;
    pointwise.in_channels = pointwise.out_channels = 64;
    pointwise.precision = Precision::int8;
    EXPECT_EQ(kernels::compute_precision(pointwise), Precision::bf16) << "no calibrated range";
    pointwise.input_range = 3.0f;
    EXPECT_EQ(kernels::compute_precision(pointwise), Precision::int8);
    kernels::ConvDesc depthwise = pointwise;
    depthwise.groups = 64;
    EXPECT_EQ(kernels::compute_precision(depthwise), Precision::bf16);
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
}

struct LinearCase {
    std::string name;
    int rows, in, out;
    Activation activation;
    bool accumulate;
};

void PrintTo(const LinearCase& c, std::ostream* os) { *os << c.name; }

class LinearOp : public ::testing::TestWithParam<LinearCase> {};

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

TEST_P(LinearOp, BackendsMatchNaiveProduct) {
    const LinearCase& c = GetParam();
    const LinearRun r = make_linear_inputs(c);
    const auto expected = naive_linear(c, r.x, r.w, r.b, r.y0);
    for (const char* name : {"reference", "onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        kernels::LinearDesc d{c.in, c.out, c.activation, c.accumulate};
        EXPECT_LE(relative_error(run_linear(*backend, d, c, r), expected), 1e-5) << name << ", no typical rows";
        d.typical_rows = c.rows + 5;
        EXPECT_LE(relative_error(run_linear(*backend, d, c, r), expected), 1e-5) << name << ", packed for other rows";
        if (!backend->native(Precision::bf16) && std::string(name) != "reference") continue;
        d.precision = Precision::bf16;
        for (DType input : {DType::f32, DType::bf16}) {
            for (DType output : {DType::f32, DType::bf16}) {
                d.input = input;
                d.output = output;
                d.typical_rows = c.rows;
                const auto ours = run_linear(*backend, d, c, r);
                EXPECT_LE(relative_error(ours, expected), 1e-2) << name << " bf16 " << to_string(input) << "->" << to_string(output);
                if (std::string(name) != "reference") {
                    const auto emulated = run_linear(kernels::reference_backend(), d, c, r);
                    EXPECT_LE(relative_error(ours, emulated), output == DType::bf16 ? 8e-3 : 1e-3) << name << " vs emulated bf16";
                }
            }
        }
    }
}

TEST_P(LinearOp, Int8MatchesEmulationAndStaysNearTheExactProduct) {
    const LinearCase& c = GetParam();
    const LinearRun r = make_linear_inputs(c);
    const auto exact = naive_linear(c, r.x, r.w, r.b, r.y0);
    for (const char* name : {"reference", "onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        if (std::string(name) != "reference" && !backend->native(Precision::int8)) continue;
        kernels::LinearDesc d;
        d.in_features = c.in;
        d.out_features = c.out;
        d.activation = c.activation;
        d.accumulate = c.accumulate;
        d.precision = Precision::int8;
        d.input_range = 1.0f;
        const auto ours = run_linear(*backend, d, c, r);
        EXPECT_LE(relative_error(ours, exact), 2e-2) << name;
        if (std::string(name) == "reference") continue;
        for (DType input : {DType::f32, DType::bf16}) {
            for (DType output : {DType::f32, DType::bf16}) {
                d.input = input;
                d.output = output;
                d.input_range = 0.5f;
                const auto emulated = run_linear(kernels::reference_backend(), d, c, r);
                EXPECT_LE(relative_error(run_linear(*backend, d, c, r), emulated), output == DType::bf16 ? 8e-3 : 1e-3)
                    << name << " int8 " << to_string(input) << "->" << to_string(output);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearOp,
                         ::testing::Values(LinearCase{"single_row", 1, 7, 5, Activation::none, false},
                                           LinearCase{"odd_sizes_gelu", 13, 33, 17, Activation::gelu, false},
                                           LinearCase{"sequence_residual", 77, 64, 96, Activation::none, true},
                                           LinearCase{"relu_wide", 9, 128, 300, Activation::relu, true}),
                         [](const auto& info) { return info.param.name; });

struct AttentionCase {
    std::string name;
    int n, length, heads, head_dim;
    bool causal;
};

void PrintTo(const AttentionCase& c, std::ostream* os) { *os << c.name; }

class AttentionOp : public ::testing::TestWithParam<AttentionCase> {};

// Every backend's batched attention against ops.h's single-sequence attention (itself checked
// against a naive version in test_ops), in float32 and bf16.
TEST_P(AttentionOp, BackendsMatchTheSharedOperator) {
    const AttentionCase& c = GetParam();
    const int width = c.heads * c.head_dim;
    const auto qkv = random_values(static_cast<int64_t>(c.n) * c.length * 3 * width, 2.0f, 31);
    std::vector<float> expected(static_cast<size_t>(c.n) * c.length * width);
    for (int b = 0; b < c.n; ++b) {
        kernels::multi_head_attention(qkv.data() + static_cast<size_t>(b) * c.length * 3 * width, c.length, c.heads, c.head_dim,
                                      c.causal, expected.data() + static_cast<size_t>(b) * c.length * width);
    }
    for (const char* name : {"reference", "onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        for (Precision precision : {Precision::f32, Precision::bf16}) {
            if (precision == Precision::bf16 && !backend->native(precision) && std::string(name) != "reference") continue;
            const DType narrow = precision == Precision::bf16 ? DType::bf16 : DType::f32;
            const auto attention = backend->make_attention({c.heads, c.head_dim, c.causal, precision, narrow, narrow});
            Buffer in(narrow, qkv), out(narrow, std::vector<float>(expected.size(), 0.0f));
            attention->run(in.data(), c.n, c.length, out.data());
            EXPECT_LE(relative_error(out.values(), expected), precision == Precision::f32 ? 1e-5 : 2e-2)
                << name << " " << kernels::to_string(precision);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionOp,
                         ::testing::Values(AttentionCase{"one_token", 1, 1, 2, 8, false},
                                           AttentionCase{"odd_sizes_batch3", 3, 13, 3, 5, false},
                                           AttentionCase{"causal_batch2", 2, 77, 8, 64, true},
                                           AttentionCase{"image_tokens", 2, 64, 16, 32, false},
                                           // 4.3 MB of scores per sequence: run one sequence at a time
                                           AttentionCase{"long_sequences_one_at_a_time", 3, 300, 12, 8, true}),
                         [](const auto& info) { return info.param.name; });

TEST(ConvOp, RejectsWeightsThatDoNotMatchTheDescription) {
    kernels::ConvDesc d;
    d.in_channels = 4;
    d.out_channels = 6;
    d.kernel_h = d.kernel_w = 3;
    for (const char* name : {"reference", "onednn"}) {
        kernels::Backend* backend = available_backend(name);
        if (!backend) continue;
        EXPECT_THROW(backend->make_conv2d(d, random_tensor({6, 4, 1, 1}, 1.0f, 1), Tensor()), Error) << name;
        kernels::ConvDesc grouped = d;
        grouped.groups = 4;
        EXPECT_THROW(backend->make_conv2d(grouped, random_tensor({6, 1, 3, 3}, 1.0f, 1), Tensor()), Error) << name;
        EXPECT_THROW(backend->make_linear({4, 6}, random_tensor({4, 6}, 1.0f, 1), Tensor()), Error) << name;
    }
}

}  // namespace
