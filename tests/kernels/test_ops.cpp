// The shared operators (ops.h) against naive double-precision versions written here, plus the
// scratch-memory pool and the profiler.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/avx2/quantize.h"
#include "kernels/avx512/quantize.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"
#include "kernels/profile.h"

using namespace mclip;

namespace {

std::vector<float> random_values(int64_t count, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-scale, scale);
    std::vector<float> v(count);
    for (float& x : v) x = dist(rng);
    return v;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
    double worst = 0;
    for (size_t i = 0; i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    return worst;
}

TEST(Ops, GeluIsTheErfForm) {
    std::vector<float> x = random_values(1000, 6.0f, 1);
    const std::vector<float> original = x;
    kernels::gelu_inplace(x.data(), static_cast<int64_t>(x.size()));
    std::vector<double> expected;
    for (float v : original) expected.push_back(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
    EXPECT_LE(max_abs_diff(x, expected), 2e-6);
}

// The special values go through both the 16-wide vector path (at the front) and the scalar tail
// (at the end, 997 random values between them).
TEST(Ops, Bf16ConversionRoundsToNearestEvenAndKeepsSpecialValues) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> special = {0.0f, -0.0f, 1.0f, 1.00390625f /* a tie: rounds to even, 1.0 */,
                                        1.01171875f /* tie up to 1.015625 */, inf, -inf, 3.0e38f, 1e-40f, nan, -nan};
    const std::vector<float> special_back = {0.0f, -0.0f, 1.0f, 1.0f, 1.015625f, inf, -inf};
    std::vector<float> values = special;
    const std::vector<float> random = random_values(997, 100.0f, 2);
    values.insert(values.end(), random.begin(), random.end());
    values.insert(values.end(), special.begin(), special.end());
    std::vector<uint16_t> bits(values.size());
    kernels::f32_to_bf16(values.data(), bits.data(), static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(bits[i], mclip::f32_to_bf16(values[i])) << values[i];
    std::vector<float> back(values.size());
    kernels::bf16_to_f32(bits.data(), back.data(), static_cast<int64_t>(bits.size()));
    for (const size_t start : {size_t{0}, values.size() - special.size()}) {
        for (size_t i = 0; i < special_back.size(); ++i) {
            EXPECT_EQ(back[start + i], special_back[i]) << "special value " << i << " at " << start + i;
            EXPECT_EQ(std::signbit(back[start + i]), std::signbit(special_back[i])) << "special value " << i;
        }
        EXPECT_TRUE(std::isnan(back[start + 9]) && std::isnan(back[start + 10])) << "NaN at " << start + 9;
    }
    for (size_t i = 0; i < values.size(); ++i) {
        if (std::isfinite(values[i]) && std::abs(values[i]) > 1e-30f) {
            EXPECT_LE(std::abs(back[i] - values[i]), std::abs(values[i]) / 256.0f);
        }
    }
}

// GELU on bf16 is GELU on the widened values, rounded: bit for bit, for a count that leaves a
// ragged end and a tensor large enough to be split between threads.
TEST(Ops, GeluOnBf16IsFloatGeluRounded) {
    for (const int64_t count : {int64_t{37}, int64_t{300001}}) {
        const std::vector<float> x = random_values(count, 6.0f, 5);
        std::vector<uint16_t> bits(x.size());
        kernels::f32_to_bf16(x.data(), bits.data(), count);
        std::vector<float> expected(x.size());
        kernels::bf16_to_f32(bits.data(), expected.data(), count);
        kernels::gelu_inplace(expected.data(), count);
        kernels::gelu_inplace_bf16(bits.data(), count);
        for (int64_t i = 0; i < count; ++i) ASSERT_EQ(bits[i], mclip::f32_to_bf16(expected[i])) << "value " << i << " of " << count;
    }
}

// An int8 layer's input quantization: q = clamp(round_half_even(x · s_c), −128, 127), by the
// dispatcher (the best version for this CPU) and by each vector version the CPU runs. Ties,
// saturation and infinities through the vector path (a row of 32 channels at step 1), then
// random values against the formula for float32 and bf16 inputs, channel counts that do and do
// not fill the vector blocks, and a tensor large enough to be split between threads.
using Quantizer = std::function<void(const void* x, DType type, int64_t positions, int channels, const float* inverse_steps, int8_t* y)>;

std::vector<std::pair<std::string, Quantizer>> quantizers() {
    std::vector<std::pair<std::string, Quantizer>> out = {{"quantize_channels_s8", kernels::quantize_channels_s8}};
    const auto rows_version = [](auto quantize_rows) {
        return [quantize_rows](const void* x, DType type, int64_t positions, int channels, const float* inverse_steps, int8_t* y) {
            quantize_rows(type == DType::bf16, x, positions, channels, inverse_steps, y);
        };
    };
    if (kernels::avx2::cpu_supported()) out.emplace_back("AVX2", rows_version(kernels::avx2::quantize_rows_s8));
    if (kernels::avx512::cpu_supported()) out.emplace_back("AVX-512", rows_version(kernels::avx512::quantize_rows_s8));
    return out;
}

TEST(Ops, ChannelQuantizationRoundsHalfToEvenAndSaturatesPerChannel) {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> special = {0.5f,  1.5f,  2.5f,   -0.5f,  -1.5f,  -2.5f, 126.5f, 127.5f, -127.5f, -128.5f, 1e12f,
                                        -1e12f, inf,  -inf,   0.0f,   -0.0f,  3.5f,  -3.5f,  0.49f,  -0.51f,  200.0f,  -129.0f,
                                        63.5f, 64.5f, -63.5f, -64.5f, 10.0f,  -10.0f, 1.25f, -1.75f,  100.5f,  -100.5f};
    const std::vector<int8_t> rounded = {0,  2,  2,  0,   -2,  -2, 126, 127, -128, -128, 127, -128, 127, -128, 0,   0,
                                         4, -4, 0,  -1,  127, -128, 64, 64,  -64,  -64,  10,  -10,  1,   -2,   100, -100};
    const std::vector<float> unit_steps(special.size(), 1.0f);
    for (const auto& [name, quantize] : quantizers()) {
        SCOPED_TRACE(name);
        std::vector<int8_t> q(special.size());
        quantize(special.data(), DType::f32, 1, static_cast<int>(special.size()), unit_steps.data(), q.data());
        EXPECT_EQ(q, rounded);

        for (const auto& [positions, channels] : std::vector<std::pair<int64_t, int>>{{5, 3}, {7, 32}, {9, 75}, {200, 768}}) {
            const std::vector<float> x = random_values(positions * channels, 300.0f, 3);
            std::vector<float> inverse_steps(channels);
            for (int c = 0; c < channels; ++c) inverse_steps[c] = 0.25f + 0.01f * static_cast<float>(c);
            for (const DType type : {DType::f32, DType::bf16}) {
                std::vector<uint16_t> bits(x.size());
                kernels::f32_to_bf16(x.data(), bits.data(), static_cast<int64_t>(x.size()));
                std::vector<float> values = x;
                if (type == DType::bf16) kernels::bf16_to_f32(bits.data(), values.data(), static_cast<int64_t>(x.size()));
                std::vector<int8_t> quantized(x.size(), 99);
                quantize(type == DType::bf16 ? static_cast<const void*>(bits.data()) : x.data(), type, positions, channels, inverse_steps.data(),
                         quantized.data());
                for (size_t i = 0; i < x.size(); ++i) {
                    const float expected = std::clamp(std::nearbyint(values[i] * inverse_steps[i % channels]), -128.0f, 127.0f);
                    ASSERT_EQ(quantized[i], static_cast<int8_t>(expected))
                        << "value " << values[i] << " channel " << i % channels << " of " << channels << (type == DType::bf16 ? " (bf16)" : "");
                }
            }
        }
    }
}

// SmoothQuant's weight side: W[:, c]·s_c for dense weights [out, in, kh, kw]; depthwise weights
// [out, 1, kh, kw] scale output channel o by the factor of its input channel o / (out / in).
TEST(Ops, SmoothingScalesTheWeightsOfEachInputChannel) {
    Tensor dense = Tensor::zeros_f32({2, 3, 1, 2});
    for (int64_t i = 0; i < 12; ++i) dense.f32()[i] = 1.0f;
    const Tensor smoothed_dense = kernels::smooth_input_channels(dense, {2.0f, 3.0f, 5.0f});
    const std::vector<float> dense_expected = {2, 2, 3, 3, 5, 5, 2, 2, 3, 3, 5, 5};
    EXPECT_EQ(std::vector<float>(smoothed_dense.f32(), smoothed_dense.f32() + 12), dense_expected);
    Tensor depthwise = Tensor::zeros_f32({4, 1, 1, 2});
    for (int64_t i = 0; i < 8; ++i) depthwise.f32()[i] = 1.0f;
    const Tensor one_each = kernels::smooth_input_channels(depthwise, {2.0f, 3.0f, 5.0f, 7.0f});
    const std::vector<float> one_each_expected = {2, 2, 3, 3, 5, 5, 7, 7};
    EXPECT_EQ(std::vector<float>(one_each.f32(), one_each.f32() + 8), one_each_expected);
    const Tensor two_each = kernels::smooth_input_channels(depthwise, {2.0f, 3.0f});
    const std::vector<float> two_each_expected = {2, 2, 2, 2, 3, 3, 3, 3};
    EXPECT_EQ(std::vector<float>(two_each.f32(), two_each.f32() + 8), two_each_expected) << "channel multiplier 2";
    EXPECT_THROW(kernels::smooth_input_channels(dense, {2.0f, 3.0f}), Error);
}

TEST(Ops, StoreConvertsAndAccumulates) {
    const std::vector<float> values = random_values(37, 3.0f, 3);
    std::vector<float> y = random_values(37, 3.0f, 4);
    const std::vector<float> y0 = y;
    kernels::store_f32(values.data(), 37, y.data(), DType::f32, true);
    for (int i = 0; i < 37; ++i) EXPECT_FLOAT_EQ(y[i], y0[i] + values[i]);
    std::vector<uint16_t> yb(37);
    kernels::f32_to_bf16(y0.data(), yb.data(), 37);
    kernels::store_f32(values.data(), 37, yb.data(), DType::bf16, true);
    for (int i = 0; i < 37; ++i) {
        EXPECT_EQ(yb[i], mclip::f32_to_bf16(mclip::bf16_to_f32(mclip::f32_to_bf16(y0[i])) + values[i]));
    }
    kernels::store_f32(values.data(), 37, yb.data(), DType::bf16, false);
    for (int i = 0; i < 37; ++i) EXPECT_EQ(yb[i], mclip::f32_to_bf16(values[i]));
}

TEST(Ops, LayerNormMatchesDoublePrecision) {
    const int rows = 5, width = 77;  // not a multiple of the 16-lane partial sums
    std::vector<float> x = random_values(rows * width, 2.0f, 5);
    for (float& v : x) v += 30.0f;  // a large mean, where one-pass variance formulas fail
    const auto w = random_values(width, 1.0f, 6), b = random_values(width, 1.0f, 7);
    std::vector<float> y(rows * width);
    kernels::layer_norm(x.data(), rows, width, w.data(), b.data(), 1e-5f, y.data());
    std::vector<double> expected;
    for (int r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int i = 0; i < width; ++i) mean += x[r * width + i];
        mean /= width;
        for (int i = 0; i < width; ++i) var += (x[r * width + i] - mean) * (x[r * width + i] - mean);
        var /= width;
        for (int i = 0; i < width; ++i) expected.push_back((x[r * width + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i]);
    }
    EXPECT_LE(max_abs_diff(y, expected), 2e-5);
    std::vector<uint16_t> narrow(rows * width);
    kernels::layer_norm(x.data(), rows, width, w.data(), b.data(), 1e-5f, narrow.data(), DType::bf16);
    std::vector<float> widened(rows * width);
    kernels::bf16_to_f32(narrow.data(), widened.data(), rows * width);
    EXPECT_LE(max_abs_diff(widened, expected), 0.02);
}

// Naive attention in double: out[i, h] = Σ_j softmax_j(q_i·k_j / √d) v_j.
std::vector<double> naive_attention(const std::vector<float>& qkv, int length, int heads, int dim, bool causal) {
    const int width = heads * dim;
    std::vector<double> out(static_cast<size_t>(length) * width, 0.0);
    for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < length; ++i) {
            std::vector<double> scores;
            double max_score = -1e300;
            const int visible = causal ? i + 1 : length;
            for (int j = 0; j < visible; ++j) {
                double s = 0;
                for (int d = 0; d < dim; ++d) s += static_cast<double>(qkv[i * 3 * width + h * dim + d]) * qkv[j * 3 * width + width + h * dim + d];
                scores.push_back(s / std::sqrt(static_cast<double>(dim)));
                max_score = std::max(max_score, scores.back());
            }
            double sum = 0;
            for (double& s : scores) sum += (s = std::exp(s - max_score));
            for (int j = 0; j < visible; ++j) {
                for (int d = 0; d < dim; ++d) out[i * width + h * dim + d] += scores[j] / sum * qkv[j * 3 * width + 2 * width + h * dim + d];
            }
        }
    }
    return out;
}

TEST(Ops, AttentionMatchesNaiveSoftmaxAttention) {
    for (bool causal : {false, true}) {
        for (auto [length, heads, dim] : {std::tuple{1, 1, 8}, std::tuple{7, 3, 5}, std::tuple{77, 8, 64}}) {
            const int width = heads * dim;
            const auto qkv = random_values(static_cast<int64_t>(length) * 3 * width, 3.0f, 8);
            const auto expected = naive_attention(qkv, length, heads, dim, causal);
            std::vector<float> out(static_cast<size_t>(length) * width);
            kernels::multi_head_attention(qkv.data(), length, heads, dim, causal, out.data());
            EXPECT_LE(max_abs_diff(out, expected), 2e-5) << length << "x" << heads << "x" << dim << (causal ? " causal" : "");
        }
    }
}

TEST(Ops, AttentionSoftmaxMasksCausallyAndWritesBf16) {
    const int groups = 3, length = 21;
    const std::vector<float> scores = random_values(groups * length * length, 8.0f, 16);
    for (bool causal : {false, true}) {
        std::vector<double> expected(scores.size(), 0.0);
        for (int r = 0; r < groups * length; ++r) {
            const int visible = causal ? r % length + 1 : length;
            double max_score = -1e300, sum = 0;
            for (int j = 0; j < visible; ++j) max_score = std::max<double>(max_score, scores[r * length + j]);
            for (int j = 0; j < visible; ++j) sum += std::exp(scores[r * length + j] - max_score);
            for (int j = 0; j < visible; ++j) expected[r * length + j] = std::exp(scores[r * length + j] - max_score) / sum;
        }
        std::vector<float> in_place = scores;
        kernels::attention_softmax(in_place.data(), groups, length, causal, in_place.data(), DType::f32);
        EXPECT_LE(max_abs_diff(in_place, expected), 1e-6) << (causal ? "causal" : "full");
        std::vector<float> work = scores;
        std::vector<uint16_t> narrow(scores.size());
        kernels::attention_softmax(work.data(), groups, length, causal, narrow.data(), DType::bf16);
        std::vector<float> widened(scores.size());
        kernels::bf16_to_f32(narrow.data(), widened.data(), static_cast<int64_t>(narrow.size()));
        EXPECT_LE(max_abs_diff(widened, expected), 4e-3) << (causal ? "causal" : "full");
    }
}

TEST(Ops, PoolingAndSqueezeExciteOnNhwc) {
    const int spatial = 35, channels = 19, reduced = 5;
    std::vector<float> x = random_values(spatial * channels, 1.0f, 9);
    const std::vector<float> original = x;
    std::vector<float> pooled(channels);
    kernels::global_average_pool(x.data(), spatial, channels, pooled.data());
    std::vector<double> mean(channels, 0.0);
    for (int s = 0; s < spatial; ++s) {
        for (int c = 0; c < channels; ++c) mean[c] += x[s * channels + c] / static_cast<double>(spatial);
    }
    EXPECT_LE(max_abs_diff(pooled, mean), 1e-6);

    const auto w1 = random_values(reduced * channels, 1.0f, 10), b1 = random_values(reduced, 1.0f, 11);
    const auto w2 = random_values(channels * reduced, 1.0f, 12), b2 = random_values(channels, 1.0f, 13);
    std::vector<float> gates(channels);
    kernels::squeeze_excite_gates(pooled.data(), channels, w1.data(), b1.data(), reduced, w2.data(), b2.data(), gates.data());
    std::vector<double> expected_gates(channels);
    for (int c = 0; c < channels; ++c) {
        double s = b2[c];
        for (int r = 0; r < reduced; ++r) {
            double hidden = b1[r];
            for (int k = 0; k < channels; ++k) hidden += w1[r * channels + k] * mean[k];
            s += w2[c * reduced + r] * std::max(hidden, 0.0);
        }
        expected_gates[c] = 1.0 / (1.0 + std::exp(-s));
    }
    EXPECT_LE(max_abs_diff(gates, expected_gates), 1e-6);

    kernels::scale_channels(x.data(), spatial, channels, gates.data(), true);
    std::vector<double> expected;
    for (int s = 0; s < spatial; ++s) {
        for (int c = 0; c < channels; ++c) {
            const double v = original[s * channels + c] * static_cast<double>(gates[c]);
            expected.push_back(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
        }
    }
    EXPECT_LE(max_abs_diff(x, expected), 1e-6);
}

TEST(Ops, LayoutChangesMoveEveryElementToItsPlace) {
    const int n = 2, c = 3, h = 4, w = 5;
    std::vector<float> nchw(n * c * h * w);
    for (size_t i = 0; i < nchw.size(); ++i) nchw[i] = static_cast<float>(i);
    std::vector<float> nhwc(nchw.size()), back(nchw.size());
    kernels::nchw_to_nhwc(nchw.data(), n, c, h, w, nhwc.data());
    // element (b, ch, i, j) of NCHW sits at ((b·h + i)·w + j)·c + ch in NHWC
    EXPECT_EQ(nhwc[((1 * h + 2) * w + 3) * c + 1], nchw[((1 * c + 1) * h + 2) * w + 3]);
    kernels::nhwc_to_nchw(nhwc.data(), n, c, h, w, back.data());
    EXPECT_EQ(back, nchw);
}

TEST(Ops, MatmulInOut) {
    const auto x = random_values(3 * 10, 1.0f, 14), p = random_values(10 * 6, 1.0f, 15);
    std::vector<float> y(3 * 6);
    kernels::matmul_in_out(x.data(), 3, 10, p.data(), 6, y.data());
    std::vector<double> expected(18, 0.0);
    for (int r = 0; r < 3; ++r) {
        for (int o = 0; o < 6; ++o) {
            for (int i = 0; i < 10; ++i) expected[r * 6 + o] += static_cast<double>(x[r * 10 + i]) * p[i * 6 + o];
        }
    }
    EXPECT_LE(max_abs_diff(y, expected), 1e-5);
}

TEST(Workspace, KeepsBuffersBetweenLeasesAndGrowsOnDemand) {
    kernels::WorkspacePool pool;
    float* first;
    {
        auto lease = pool.acquire();
        first = lease->floats(0, 1000);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
        first[999] = 1.0f;
    }
    {
        auto lease = pool.acquire();
        EXPECT_EQ(lease->floats(0, 500), first) << "a released workspace is reused";
        float* bigger = lease->floats(0, 100000);
        bigger[99999] = 2.0f;
        auto concurrent = pool.acquire();
        EXPECT_NE(concurrent->floats(0, 10), bigger) << "a workspace in use is never handed out twice";
    }
}

TEST(Profile, RecordsOnlyWhileEnabledAndOnlyOutermostScopes) {
    kernels::reset_profile();
    { kernels::ProfileScope ignored("test op"); }
    EXPECT_TRUE(kernels::profile_results().empty());
    kernels::set_profiling(true);
    {
        kernels::ProfileScope outer("test outer");
        kernels::ProfileScope inner("test inner");
    }
    std::vector<float> x(10, 1.0f);
    kernels::gelu_inplace(x.data(), 10);
    kernels::set_profiling(false);
    const auto results = kernels::profile_results();
    ASSERT_EQ(results.size(), 2u);
    for (const auto& entry : results) {
        EXPECT_TRUE(entry.label == "test outer" || entry.label == "gelu") << entry.label;
        EXPECT_EQ(entry.calls, 1);
        EXPECT_GE(entry.total_ms, 0.0);
    }
    kernels::reset_profile();
    EXPECT_TRUE(kernels::profile_results().empty());
}

}  // namespace
