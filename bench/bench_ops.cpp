// Operator benchmarks on the shapes MobileCLIP runs, one family per operator type, on every
// backend and precision available here. Throughput counters are multiply-adds per second (MAC/s)
// or bytes per second, to set against the machine's peak (docs/performance.md).
//
//   bench_ops [--threads=N] [Google Benchmark flags, e.g. --benchmark_filter=conv1x1/onednn]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

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

namespace {

using namespace mclip;
using kernels::Activation;
using kernels::Precision;

struct Variant {
    kernels::Backend* backend;
    Precision precision;
    std::string name() const { return backend->name() + "/" + kernels::to_string(precision); }
};

std::vector<Variant> variants() {
    std::vector<Variant> out;
    for (const char* name : {"reference", "onednn"}) {
        kernels::Backend* backend = nullptr;
        try {
            backend = &kernels::backend_by_name(name);
        } catch (const std::exception&) {
            continue;
        }
        out.push_back({backend, Precision::f32});
        if (backend->native(Precision::bf16)) out.push_back({backend, Precision::bf16});
        if (backend->native(Precision::int8)) out.push_back({backend, Precision::int8});
    }
    return out;
}

Tensor random_tensor(const Shape& shape, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    Tensor t = Tensor::zeros_f32(shape);
    for (int64_t i = 0; i < t.elements(); ++i) t.f32()[i] = dist(rng);
    return t;
}

struct ConvCase {
    const char* family;  // conv1x1, conv_depthwise, conv_dense
    const char* label;
    int in, out, kh, kw, stride, groups, h, w;
    Activation activation;
    bool accumulate;
};

// The MobileCLIP-S0 convolutions (image encoder at 256², text RepMixer on 77 tokens).
const ConvCase kConvCases[] = {
    {"conv_dense", "stem_3x64_3x3s2_256", 3, 64, 3, 3, 2, 1, 256, 256, Activation::gelu, false},
    {"conv1x1", "s0_fc1_64x192_64", 64, 192, 1, 1, 1, 1, 64, 64, Activation::gelu, false},
    {"conv1x1", "s0_fc2_192x64_64", 192, 64, 1, 1, 1, 1, 64, 64, Activation::none, true},
    {"conv1x1", "s1_fc1_128x384_32", 128, 384, 1, 1, 1, 1, 32, 32, Activation::gelu, false},
    {"conv1x1", "s1_fc2_384x128_32", 384, 128, 1, 1, 1, 1, 32, 32, Activation::none, true},
    {"conv1x1", "s2_fc1_256x768_16", 256, 768, 1, 1, 1, 1, 16, 16, Activation::gelu, false},
    {"conv1x1", "s2_fc2_768x256_16", 768, 256, 1, 1, 1, 1, 16, 16, Activation::none, true},
    {"conv1x1", "s3_fc1_512x1536_8", 512, 1536, 1, 1, 1, 1, 8, 8, Activation::gelu, false},
    {"conv1x1", "text_fc1_512x2048_77", 512, 2048, 1, 1, 1, 1, 1, 77, Activation::gelu, false},
    {"conv1x1", "stem_64x64_64", 64, 64, 1, 1, 1, 1, 64, 64, Activation::gelu, false},
    {"conv1x1", "down2_512x512_8", 512, 512, 1, 1, 1, 1, 8, 8, Activation::gelu, false},
    {"conv_depthwise", "stem_dw_64_3x3s2_128", 64, 64, 3, 3, 2, 64, 128, 128, Activation::gelu, false},
    {"conv_depthwise", "s0_mixer_64_3x3_64", 64, 64, 3, 3, 1, 64, 64, 64, Activation::none, false},
    {"conv_depthwise", "s2_mixer_256_3x3_16", 256, 256, 3, 3, 1, 256, 16, 16, Activation::none, false},
    {"conv_depthwise", "s0_ffn_64_7x7_64", 64, 64, 7, 7, 1, 64, 64, 64, Activation::none, false},
    {"conv_depthwise", "s1_ffn_128_7x7_32", 128, 128, 7, 7, 1, 128, 32, 32, Activation::none, false},
    {"conv_depthwise", "s2_ffn_256_7x7_16", 256, 256, 7, 7, 1, 256, 16, 16, Activation::none, false},
    {"conv_depthwise", "down0_64x128_7x7s2_64", 64, 128, 7, 7, 2, 64, 64, 64, Activation::gelu, false},
    {"conv_depthwise", "text_mixer_512_1x11_77", 512, 512, 1, 11, 1, 512, 1, 77, Activation::none, false},
};

kernels::ConvDesc conv_desc(const ConvCase& c, Precision precision) {
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
    d.precision = precision;
    d.input_range = 1.0f;  // the inputs are uniform in [-1, 1]
    d.typical_h = c.h;
    d.typical_w = c.w;
    return d;
}

using ConvFactory = std::function<std::unique_ptr<kernels::Conv2d>(const kernels::ConvDesc&, const Tensor&, const Tensor&)>;

void bench_conv(benchmark::State& state, ConvFactory make, Precision precision, ConvCase c) {
    const kernels::ConvDesc d = conv_desc(c, precision);
    const auto conv = make(d, random_tensor({c.out, c.in / c.groups, c.kh, c.kw}, 0.1f, 1), random_tensor({c.out}, 0.1f, 2));
    const Tensor x = random_tensor({c.h, c.w, c.in}, 1.0f, 3);
    Tensor y = random_tensor({d.output_h(c.h), d.output_w(c.w), c.out}, 1.0f, 4);
    for (auto _ : state) {
        conv->run(x.f32(), 1, c.h, c.w, y.f32());
        benchmark::DoNotOptimize(y.f32());
    }
    const double macs = static_cast<double>(d.output_h(c.h)) * d.output_w(c.w) * c.out * (c.in / c.groups) * c.kh * c.kw;
    state.counters["MAC/s"] = benchmark::Counter(macs, benchmark::Counter::kIsIterationInvariantRate);
}

// The MCi stem's first two layers (dense 3×3 stride 2 from the image's 3 channels, GELU, then a
// 3×3 stride-2 depthwise one, GELU), float32: fused (kernels/avx512/conv_pair.h), or as the two
// oneDNN-backend convolutions the graph runs without it. Counted: both layers' multiply-adds.
struct ConvPairCase {
    const char* label;
    int channels, size;
};

const ConvPairCase kConvPairCases[] = {
    {"s0_stem_3x64_256", 64, 256},
    {"s2_stem_3x80_256", 80, 256},
};

void bench_conv_pair(benchmark::State& state, ConvPairCase c, bool fused) {
    const ConvCase first_case{"conv_dense", c.label, 3, c.channels, 3, 3, 2, 1, c.size, c.size, Activation::gelu, false};
    const kernels::ConvDesc first = conv_desc(first_case, Precision::f32);
    const int mid = first.output_h(c.size);
    const ConvCase second_case{"conv_depthwise", c.label, c.channels, c.channels, 3, 3, 2, c.channels, mid, mid, Activation::gelu, false};
    const kernels::ConvDesc second = conv_desc(second_case, Precision::f32);
    const int out = second.output_h(mid);
    const Tensor w1 = random_tensor({c.channels, 3, 3, 3}, 0.3f, 1), b1 = random_tensor({c.channels}, 0.1f, 2);
    const Tensor w2 = random_tensor({c.channels, 1, 3, 3}, 0.3f, 3), b2 = random_tensor({c.channels}, 0.1f, 4);
    const Tensor x = random_tensor({c.size, c.size, 3}, 1.0f, 5);
    Tensor hidden = Tensor::zeros_f32({mid, mid, c.channels}), y = Tensor::zeros_f32({out, out, c.channels});
    kernels::Backend& onednn = kernels::backend_by_name("onednn");
    std::unique_ptr<kernels::ConvPair> pair;
    std::unique_ptr<kernels::Conv2d> conv1, conv2;
    if (fused) {
        pair = kernels::avx512::make_conv_pair(first, w1, b1, second, w2, b2);
    } else {
        conv1 = onednn.make_conv2d(first, w1, b1);
        conv2 = onednn.make_conv2d(second, w2, b2);
    }
    for (auto _ : state) {
        if (fused) {
            pair->run(x.f32(), 1, c.size, c.size, y.f32());
        } else {
            conv1->run(x.f32(), 1, c.size, c.size, hidden.f32());
            conv2->run(hidden.f32(), 1, mid, mid, y.f32());
        }
        benchmark::DoNotOptimize(y.f32());
    }
    const double macs = static_cast<double>(mid) * mid * c.channels * 27 + static_cast<double>(out) * out * c.channels * 9;
    state.counters["MAC/s"] = benchmark::Counter(macs, benchmark::Counter::kIsIterationInvariantRate);
}

struct LinearCase {
    const char* label;
    int rows, in, out;
    Activation activation;
    bool accumulate;
};

const LinearCase kLinearCases[] = {
    {"text_qkv_77x512x1536", 77, 512, 1536, Activation::none, false},
    {"text_fc1_77x512x2048", 77, 512, 2048, Activation::gelu, false},
    {"text_fc2_77x2048x512", 77, 2048, 512, Activation::none, true},
    {"text_fc1_batch100_7700x512x2048", 7700, 512, 2048, Activation::gelu, false},
    {"mci_qkv_64x512x1536", 64, 512, 1536, Activation::none, false},
};

void bench_linear(benchmark::State& state, Variant variant, LinearCase c) {
    kernels::LinearDesc d;
    d.in_features = c.in;
    d.out_features = c.out;
    d.activation = c.activation;
    d.accumulate = c.accumulate;
    d.precision = variant.precision;
    d.typical_rows = c.rows;
    d.input_range = 1.0f;  // the inputs are uniform in [-1, 1]
    const auto linear = variant.backend->make_linear(d, random_tensor({c.out, c.in}, 0.05f, 1), random_tensor({c.out}, 0.1f, 2));
    const Tensor x = random_tensor({c.rows, c.in}, 1.0f, 3);
    Tensor y = random_tensor({c.rows, c.out}, 1.0f, 4);
    for (auto _ : state) {
        linear->run(x.f32(), c.rows, y.f32());
        benchmark::DoNotOptimize(y.f32());
    }
    state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(c.rows) * c.in * c.out, benchmark::Counter::kIsIterationInvariantRate);
}

struct AttentionCase {
    const char* label;
    int length, heads, head_dim;
    bool causal;
};

const AttentionCase kAttentionCases[] = {
    {"text_77x8x64", 77, 8, 64, false},
    {"text_causal_77x8x64", 77, 8, 64, true},
    {"mci_64x16x32", 64, 16, 32, false},
    {"vit_197x12x64", 197, 12, 64, false},
};

using AttentionFactory = std::function<std::unique_ptr<kernels::Attention>(const kernels::AttentionDesc&)>;

void bench_attention(benchmark::State& state, const AttentionFactory& make, Precision precision, AttentionCase c) {
    const int width = c.heads * c.head_dim;
    const auto attention = make({c.heads, c.head_dim, c.causal, precision});
    const Tensor qkv = random_tensor({c.length, 3 * width}, 1.0f, 1);
    Tensor out = Tensor::zeros_f32({c.length, width});
    for (auto _ : state) {
        attention->run(qkv.f32(), 1, c.length, out.f32());
        benchmark::DoNotOptimize(out.f32());
    }
    state.counters["MAC/s"] = benchmark::Counter(2.0 * c.length * c.length * width, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_layer_norm(benchmark::State& state, int rows, int width) {
    const Tensor x = random_tensor({rows, width}, 1.0f, 1);
    const Tensor w = random_tensor({width}, 1.0f, 2), b = random_tensor({width}, 1.0f, 3);
    Tensor y = Tensor::zeros_f32({rows, width});
    for (auto _ : state) {
        kernels::layer_norm(x.f32(), rows, width, w.f32(), b.f32(), 1e-5f, y.f32());
        benchmark::DoNotOptimize(y.f32());
    }
    state.counters["bytes/s"] = benchmark::Counter(8.0 * rows * width, benchmark::Counter::kIsIterationInvariantRate);
}

// Squeeze-excite scaling with GELU; each run starts from the same input (repeated in-place GELU
// would drive the values into subnormals and time those instead).
void bench_channel_scale(benchmark::State& state, int spatial, int channels) {
    const Tensor input = random_tensor({spatial, channels}, 3.0f, 1);
    Tensor x = input.clone();
    const Tensor gates = random_tensor({channels}, 1.0f, 2);
    for (auto _ : state) {
        std::copy(input.f32(), input.f32() + input.elements(), x.f32());
        kernels::scale_channels(x.f32(), spatial, channels, gates.f32(), true);
        benchmark::DoNotOptimize(x.f32());
    }
    state.counters["bytes/s"] = benchmark::Counter(8.0 * spatial * channels, benchmark::Counter::kIsIterationInvariantRate);
}

// The fused pointwise FFN (y += W2·gelu(W1·x + b1) + b2) on the ConvFFN shapes of S0 and S2 and a
// transformer's MLP (ViT-B/16, MobileCLIP-B's image tower): bf16 input, as in the graph; in bf16
// where the CPU has AMX-BF16, in int8 where it has AVX512-VNNI.
struct PointwiseFfnCase {
    const char* label;
    int positions, channels, hidden;
};

const PointwiseFfnCase kPointwiseFfnCases[] = {
    {"s0_stage0_64x192_64x64", 64 * 64, 64, 192},
    {"s0_stage2_256x768_16x16", 16 * 16, 256, 768},
    {"s0_stage3_512x1536_8x8", 8 * 8, 512, 1536},
    {"s2_stage0_80x240_64x64", 64 * 64, 80, 240},
    {"s2_stage2_320x960_16x16", 16 * 16, 320, 960},
    {"s2_stage3_640x1920_8x8", 8 * 8, 640, 1920},
    {"s0_text_512x2048_77", 77, 512, 2048},
    {"vit_b16_768x3072_197", 197, 768, 3072},
};

// `fused`: the AMX kernel (bf16) or the AVX512-VNNI one (int8); otherwise the oneDNN backend's two
// 1×1 convolutions (GELU fused in the first) through a bf16 hidden layer, as the graph runs them
// without it. int8 inputs are calibrated to ranges that fit the random data.
void bench_pointwise_ffn(benchmark::State& state, PointwiseFfnCase c, Precision precision, bool fused) {
    kernels::PointwiseFfnDesc d;
    d.channels = c.channels;
    d.hidden = c.hidden;
    d.precision = precision;
    d.input = DType::bf16;
    d.input_range = 1.0f;
    d.hidden_range = 2.0f;
    const Tensor w1 = random_tensor({c.hidden, c.channels, 1, 1}, 0.1f, 1), b1 = random_tensor({c.hidden}, 0.1f, 2);
    const Tensor w2 = random_tensor({c.channels, c.hidden, 1, 1}, 0.05f, 3), b2 = random_tensor({c.channels}, 0.1f, 4);
    std::unique_ptr<kernels::PointwiseFfn> ffn;
    std::unique_ptr<kernels::Conv2d> fc1, fc2;
    if (fused) {
        ffn = precision == Precision::int8 ? kernels::avx512::make_int8_pointwise_ffn(d, w1, b1, w2, b2)
                                           : kernels::amx::make_pointwise_ffn(d, w1, b1, w2, b2);
    } else {
        kernels::ConvDesc conv;
        conv.precision = precision;
        conv.input = DType::bf16;
        conv.typical_h = 1;
        conv.typical_w = c.positions;
        conv.in_channels = c.channels;
        conv.out_channels = c.hidden;
        conv.activation = Activation::gelu;
        conv.output = DType::bf16;
        conv.input_range = d.input_range;
        fc1 = kernels::backend_by_name("onednn").make_conv2d(conv, w1, b1);
        conv.in_channels = c.hidden;
        conv.out_channels = c.channels;
        conv.activation = Activation::none;
        conv.output = DType::f32;
        conv.accumulate = true;
        conv.input_range = d.hidden_range;
        fc2 = kernels::backend_by_name("onednn").make_conv2d(conv, w2, b2);
    }
    const Tensor values = random_tensor({c.positions, c.channels}, 1.0f, 5);
    std::vector<uint16_t> x(values.elements()), hidden(static_cast<size_t>(c.positions) * c.hidden);
    kernels::f32_to_bf16(values.f32(), x.data(), values.elements());
    Tensor y = Tensor::zeros_f32({c.positions, c.channels});
    for (auto _ : state) {
        if (fused) {
            ffn->run(x.data(), c.positions, y.f32());
        } else {
            fc1->run(x.data(), 1, 1, c.positions, hidden.data());
            fc2->run(hidden.data(), 1, 1, c.positions, y.f32());
        }
        benchmark::DoNotOptimize(y.f32());
    }
    state.counters["MAC/s"] = benchmark::Counter(2.0 * c.positions * c.channels * c.hidden, benchmark::Counter::kIsIterationInvariantRate);
}

// A whole ConvFFN block in int8 (x += FFN(dw7×7(x)), bf16 between the two as in the graph) on
// S0's stages: the int8 depthwise and FFN kernels as one operator, the depthwise layer's output
// handed over in int8 levels ("vnni"), or run apart through a bf16 buffer ("vnni_apart"). Each run
// starts from the same x (a copy, in both).
struct DepthwiseFfnCase {
    const char* label;
    int side, channels, hidden;
};

const DepthwiseFfnCase kDepthwiseFfnCases[] = {
    {"s0_stage0_64x192_64x64", 64, 64, 192},
    {"s0_stage1_128x384_32x32", 32, 128, 384},
    {"s0_stage2_256x768_16x16", 16, 256, 768},
    {"s0_stage3_512x1536_8x8", 8, 512, 1536},
};

void bench_depthwise_ffn(benchmark::State& state, DepthwiseFfnCase c, bool fused) {
    kernels::ConvDesc dw;
    dw.in_channels = dw.out_channels = dw.groups = c.channels;
    dw.kernel_h = dw.kernel_w = 7;
    dw.pad_h = dw.pad_w = 3;
    dw.precision = Precision::int8;
    dw.output = DType::bf16;
    dw.input_range = 1.0f;
    kernels::PointwiseFfnDesc ffn;
    ffn.channels = c.channels;
    ffn.hidden = c.hidden;
    ffn.precision = Precision::int8;
    ffn.input = DType::bf16;
    ffn.input_range = 1.0f;
    ffn.hidden_range = 2.0f;
    const Tensor dw_weight = random_tensor({c.channels, 1, 7, 7}, 0.1f, 1), dw_bias = random_tensor({c.channels}, 0.1f, 2);
    const Tensor w1 = random_tensor({c.hidden, c.channels, 1, 1}, 0.1f, 3), b1 = random_tensor({c.hidden}, 0.1f, 4);
    const Tensor w2 = random_tensor({c.channels, c.hidden, 1, 1}, 0.05f, 5), b2 = random_tensor({c.channels}, 0.1f, 6);
    std::unique_ptr<kernels::DepthwiseFfn> block;
    std::unique_ptr<kernels::Conv2d> depthwise;
    std::unique_ptr<kernels::PointwiseFfn> pointwise;
    if (fused) {
        block = kernels::avx512::make_int8_depthwise_ffn(dw, dw_weight, dw_bias, ffn, w1, b1, w2, b2);
    } else {
        depthwise = kernels::avx512::make_int8_depthwise_conv2d(dw, dw_weight, dw_bias);
        pointwise = kernels::avx512::make_int8_pointwise_ffn(ffn, w1, b1, w2, b2);
    }
    const int positions = c.side * c.side;
    const Tensor input = random_tensor({positions, c.channels}, 1.0f, 7);
    Tensor x = Tensor::zeros_f32({positions, c.channels});
    std::vector<uint16_t> between(static_cast<size_t>(positions) * c.channels);
    for (auto _ : state) {
        std::copy(input.f32(), input.f32() + input.elements(), x.f32());
        if (fused) {
            block->add_to(x.f32(), 1, c.side, c.side);
        } else {
            depthwise->run(x.f32(), 1, c.side, c.side, between.data());
            pointwise->run(between.data(), positions, x.f32());
        }
        benchmark::DoNotOptimize(x.f32());
    }
    state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(positions) * c.channels * (2.0 * c.hidden + 49),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// GELU in place on a ConvFFN's hidden layer (S0 stage 0: 64×64×192) and on a block that stays in
// L1, float32 and bf16; each run starts from the same input, as in bench_channel_scale.
void bench_gelu(benchmark::State& state, DType type, int64_t count) {
    const Tensor input = random_tensor({count}, 3.0f, 1);
    std::vector<float> x(count);
    std::vector<uint16_t> bits(count), input_bits(count);
    kernels::f32_to_bf16(input.f32(), input_bits.data(), count);
    for (auto _ : state) {
        if (type == DType::f32) {
            std::copy(input.f32(), input.f32() + count, x.data());
            kernels::gelu_inplace(x.data(), count);
        } else {
            std::copy(input_bits.begin(), input_bits.end(), bits.begin());
            kernels::gelu_inplace_bf16(bits.data(), count);
        }
        benchmark::DoNotOptimize(x.data());
        benchmark::DoNotOptimize(bits.data());
    }
    state.counters["values/s"] = benchmark::Counter(static_cast<double>(count), benchmark::Counter::kIsIterationInvariantRate);
}

// An int8 layer's input quantization (float32 → s8, a step per channel), on the S0 and S2 fc2
// inputs: what oneDNN's quantizing reorder took 0.65 ns per value for on two AVX2 threads.
void bench_quantize(benchmark::State& state, int spatial, int channels) {
    const Tensor x = random_tensor({spatial, channels}, 3.0f, 1);
    const Tensor inverse_steps = random_tensor({channels}, 40.0f, 2);
    std::vector<int8_t> q(static_cast<size_t>(spatial) * channels);
    for (auto _ : state) {
        kernels::quantize_channels_s8(x.f32(), DType::f32, spatial, channels, inverse_steps.f32(), q.data());
        benchmark::DoNotOptimize(q.data());
    }
    state.counters["values/s"] = benchmark::Counter(static_cast<double>(spatial) * channels, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
    for (const Variant& v : variants()) {
        for (const ConvCase& c : kConvCases) {
            const ConvFactory make = [backend = v.backend](const kernels::ConvDesc& d, const Tensor& w, const Tensor& b) {
                return backend->make_conv2d(d, w, b);
            };
            benchmark::RegisterBenchmark((std::string(c.family) + "/" + v.name() + "/" + c.label).c_str(), bench_conv, make, v.precision, c)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
        for (const LinearCase& c : kLinearCases) {
            benchmark::RegisterBenchmark(("linear/" + v.name() + "/" + c.label).c_str(), bench_linear, v, c)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
        for (const AttentionCase& c : kAttentionCases) {
            const AttentionFactory make = [backend = v.backend](const kernels::AttentionDesc& d) { return backend->make_attention(d); };
            benchmark::RegisterBenchmark(("attention/" + v.name() + "/" + c.label).c_str(), bench_attention, make, v.precision, c)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
    }
    // The hand-written AVX2 depthwise kernel on every depthwise shape it takes, beside oneDNN's.
    for (const ConvCase& c : kConvCases) {
        if (!kernels::avx2::cpu_supported() || !kernels::avx2::handles_depthwise(conv_desc(c, Precision::f32))) continue;
        benchmark::RegisterBenchmark((std::string(c.family) + "/avx2/f32/" + c.label).c_str(), bench_conv, kernels::avx2::make_depthwise_conv2d,
                                     Precision::f32, c)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    // The hand-written AVX-512 depthwise kernel, which the oneDNN backend uses where it runs AVX-512.
    for (const ConvCase& c : kConvCases) {
        if (!kernels::avx512::cpu_supported() || !kernels::avx512::handles_depthwise(conv_desc(c, Precision::f32))) continue;
        benchmark::RegisterBenchmark((std::string(c.family) + "/avx512/f32/" + c.label).c_str(), bench_conv,
                                     kernels::avx512::make_depthwise_conv2d, Precision::f32, c)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    // The int8 one on AVX512-VNNI, which the oneDNN backend uses for calibrated int8 depthwise
    // layers (conv_depthwise/onednn/int8 runs it where it takes the shape, float32 elsewhere).
    for (const ConvCase& c : kConvCases) {
        if (!kernels::avx512::handles_int8_depthwise(conv_desc(c, Precision::int8))) continue;
        benchmark::RegisterBenchmark((std::string(c.family) + "/vnni/int8/" + c.label).c_str(), bench_conv,
                                     kernels::avx512::make_int8_depthwise_conv2d, Precision::int8, c)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    // The bf16 1×1 kernel on AVX512-BF16, which the oneDNN backend uses below AMX for the 1×1
    // layers that compute in bf16 (conv1x1/onednn/bf16 runs it there).
    for (const ConvCase& c : kConvCases) {
        if (!kernels::avx512::bf16_supported() || !kernels::avx512::handles_bf16_pointwise(conv_desc(c, Precision::bf16))) continue;
        benchmark::RegisterBenchmark((std::string(c.family) + "/avx512bf16/bf16/" + c.label).c_str(), bench_conv,
                                     kernels::avx512::make_bf16_pointwise_conv2d, Precision::bf16, c)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    // The float32 attention kernel, which the oneDNN backend uses where it runs AVX-512 without AMX
    // (attention/onednn/* runs it there).
    for (const AttentionCase& c : kAttentionCases) {
        if (!kernels::avx512::handles_attention({c.heads, c.head_dim, c.causal, Precision::f32})) continue;
        benchmark::RegisterBenchmark(("attention/avx512/f32/" + std::string(c.label)).c_str(), bench_attention, kernels::avx512::make_attention,
                                     Precision::f32, c)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    for (const ConvPairCase& c : kConvPairCases) {
        for (const bool fused : {true, false}) {
            if (fused && !kernels::avx512::cpu_supported()) continue;
            benchmark::RegisterBenchmark((std::string("conv_pair/") + (fused ? "avx512" : "onednn_pair") + "/f32/" + c.label).c_str(),
                                         bench_conv_pair, c, fused)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
    }
    benchmark::RegisterBenchmark("layer_norm/77x512", bench_layer_norm, 77, 512)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark("channel_scale_gelu/32x32x256", bench_channel_scale, 32 * 32, 256)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    for (const PointwiseFfnCase& c : kPointwiseFfnCases) {
        for (const auto& [precision, kernel, usable] : {std::tuple{Precision::bf16, "amx", kernels::amx::usable(false)},
                                                        std::tuple{Precision::int8, "vnni", kernels::avx512::vnni_supported()}}) {
            if (!usable) continue;
            for (const bool fused : {true, false}) {
                benchmark::RegisterBenchmark((std::string("pointwise_ffn/") + (fused ? kernel : "onednn_pair") + "/" + to_string(precision) + "/" +
                                              c.label)
                                                 .c_str(),
                                             bench_pointwise_ffn, c, precision, fused)
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime();
            }
        }
    }
    for (const DepthwiseFfnCase& c : kDepthwiseFfnCases) {
        if (!kernels::avx512::vnni_supported()) break;
        for (const bool fused : {true, false}) {
            benchmark::RegisterBenchmark((std::string("depthwise_ffn/") + (fused ? "vnni" : "vnni_apart") + "/int8/" + c.label).c_str(),
                                         bench_depthwise_ffn, c, fused)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
    }
    for (const DType type : {DType::f32, DType::bf16}) {
        benchmark::RegisterBenchmark((std::string("gelu/") + to_string(type) + "/64x64x192").c_str(), bench_gelu, type, int64_t{64} * 64 * 192)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark((std::string("gelu/") + to_string(type) + "/8x8x256").c_str(), bench_gelu, type, int64_t{8} * 8 * 256)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    for (const auto& [spatial, channels] : {std::pair{32 * 32, 384}, std::pair{16 * 16, 768}}) {
        benchmark::RegisterBenchmark(("quantize_s8/" + std::to_string(spatial) + "x" + std::to_string(channels)).c_str(), bench_quantize, spatial, channels)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
}

}  // namespace

int main(int argc, char** argv) {
    // --threads=N is ours; everything else goes to Google Benchmark.
    std::vector<char*> rest;
    int threads = 0;
    for (int i = 0; i < argc; ++i) {
        if (std::strncmp(argv[i], "--threads=", 10) == 0) {
            threads = std::atoi(argv[i] + 10);
        } else {
            rest.push_back(argv[i]);
        }
    }
    const kernels::ThreadCountScope thread_count(kernels::resolve_thread_count(threads));
    int rest_count = static_cast<int>(rest.size());
    benchmark::Initialize(&rest_count, rest.data());
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
