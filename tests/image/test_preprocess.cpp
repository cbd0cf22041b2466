// Resize + center crop + to-tensor against a slow, straightforward restatement of PIL's algorithm
// (docs/mobileclip-architecture.md section 8): the whole image resized, horizontal pass then
// vertical pass, each weight computed on the spot, and only then cropped. The code under test
// instead computes only the cropped pixels from cached weight tables.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"
#include "image/image_test_support.h"
#include "mclip/preprocess.h"
#include "image/resample.h"

namespace mclip {
namespace {

// --- the slow reference -------------------------------------------------------------------

double filter(double x, bool bicubic) {
    x = std::fabs(x);
    if (!bicubic) return x < 1.0 ? 1.0 - x : 0.0;
    const double a = -0.5;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// Output index i of an axis resized from in_size to out_size: first input index and the
// fixed-point weights (2^22 scale, rounded half away from zero after normalizing in double).
std::pair<int, std::vector<int64_t>> weights_for(int i, int in_size, int out_size, bool bicubic) {
    const double scale = static_cast<double>(in_size) / out_size;
    const double fs = std::max(scale, 1.0);
    const double support = (bicubic ? 2.0 : 1.0) * fs;
    const double center = (i + 0.5) * scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size);
    std::vector<double> w;
    double total = 0;
    for (int j = 0; j < xmax - xmin; ++j) {
        w.push_back(filter((j + xmin - center + 0.5) * (1.0 / fs), bicubic));  // Pillow multiplies by 1/fs
        total += w.back();
    }
    std::vector<int64_t> fixed;
    for (double v : w) {
        const double normalized = total != 0.0 ? v / total : v;
        fixed.push_back(static_cast<int64_t>(normalized < 0 ? normalized * 4194304.0 - 0.5 : normalized * 4194304.0 + 0.5));
    }
    return {xmin, fixed};
}

uint8_t round_and_clip(int64_t sum) {
    return static_cast<uint8_t>(std::clamp<int64_t>((sum + (1 << 21)) >> 22, 0, 255));
}

Image slow_resize(const Image& in, int out_w, int out_h, bool bicubic) {
    Image horizontal = in;
    if (out_w != in.width) {
        horizontal = {out_w, in.height, std::vector<uint8_t>(static_cast<size_t>(out_w) * in.height * 3)};
        for (int x = 0; x < out_w; ++x) {
            const auto [first, k] = weights_for(x, in.width, out_w, bicubic);
            for (int y = 0; y < in.height; ++y)
                for (int c = 0; c < 3; ++c) {
                    int64_t sum = 0;
                    for (size_t j = 0; j < k.size(); ++j) sum += in.rgb[(static_cast<size_t>(y) * in.width + first + j) * 3 + c] * k[j];
                    horizontal.rgb[(static_cast<size_t>(y) * out_w + x) * 3 + c] = round_and_clip(sum);
                }
        }
    }
    if (out_h == in.height) return horizontal;
    Image out{out_w, out_h, std::vector<uint8_t>(static_cast<size_t>(out_w) * out_h * 3)};
    for (int y = 0; y < out_h; ++y) {
        const auto [first, k] = weights_for(y, in.height, out_h, bicubic);
        for (int x = 0; x < out_w; ++x)
            for (int c = 0; c < 3; ++c) {
                int64_t sum = 0;
                for (size_t j = 0; j < k.size(); ++j) sum += horizontal.rgb[((first + j) * out_w + x) * 3 + c] * k[j];
                out.rgb[(static_cast<size_t>(y) * out_w + x) * 3 + c] = round_and_clip(sum);
            }
    }
    return out;
}

// torchvision: Resize(n) keeps the aspect ratio, int() truncates; CenterCrop uses Python round().
int python_round_half(int excess) { return static_cast<int>(std::nearbyint(excess / 2.0)); }  // ties to even

std::vector<uint8_t> slow_preprocess(const Image& in, const PreprocessParams& p) {
    const int target = p.resize_size ? p.resize_size : p.size;
    int out_w = target, out_h = target;
    if (p.resize_mode == ResizeMode::shorter_side) {
        if (in.width <= in.height) out_h = static_cast<int>(static_cast<double>(target) * in.height / in.width);
        else out_w = static_cast<int>(static_cast<double>(target) * in.width / in.height);
    }
    const Image resized = slow_resize(in, out_w, out_h, p.interpolation == Interpolation::bicubic);
    const int top = python_round_half(out_h - p.size), left = python_round_half(out_w - p.size);
    std::vector<uint8_t> crop;
    for (int y = top; y < top + p.size; ++y) {
        const auto row = resized.rgb.begin() + (static_cast<size_t>(y) * out_w + left) * 3;
        crop.insert(crop.end(), row, row + p.size * 3);
    }
    return crop;
}

// --- tests ----------------------------------------------------------------------------------

void expect_same_as_slow(const Image& image, const PreprocessParams& params, Preprocessor& preprocessor) {
    std::vector<uint8_t> ours(static_cast<size_t>(params.size) * params.size * 3);
    preprocessor.resize_crop(image.rgb.data(), image.width, image.height, static_cast<size_t>(image.width) * 3, ours.data());
    const auto want = slow_preprocess(image, params);
    int differing = 0;
    for (size_t i = 0; i < ours.size(); ++i) differing += ours[i] != want[i];
    EXPECT_EQ(differing, 0) << image.width << "x" << image.height << " -> " << params.size << " (resize "
                            << params.resize_size << ", " << (params.interpolation == Interpolation::bicubic ? "bicubic" : "bilinear")
                            << (params.resize_mode == ResizeMode::squash ? ", squash" : "") << ")";
}

const std::vector<std::pair<int, int>> kSizes = {
    {1, 1}, {1, 7}, {9, 1}, {2, 3}, {7, 13}, {31, 32}, {32, 32}, {33, 32}, {48, 17},
    {64, 64}, {97, 61}, {61, 97}, {300, 451}, {451, 300}, {640, 427}, {1000, 21}, {21, 1000},
};

TEST(Preprocess, MatchesSlowPilRestatementForUpAndDownscalingAtManySizes) {
    for (int size : {32, 45}) {
        for (Interpolation interpolation : {Interpolation::bilinear, Interpolation::bicubic}) {
            PreprocessParams params{.size = size, .interpolation = interpolation};
            Preprocessor preprocessor(params);
            for (const auto& [w, h] : kSizes) {
                expect_same_as_slow(testing::synthetic_image(w, h, w * 1000 + h), params, preprocessor);
            }
        }
    }
}

TEST(Preprocess, MatchesSlowRestatementAtModelSizes) {
    for (int size : {224, 256}) {
        PreprocessParams params{.size = size};
        Preprocessor preprocessor(params);
        for (const auto& [w, h] : std::vector<std::pair<int, int>>{{451, 300}, {300, 451}, {640, 427}, {255, 256}, {256, 257}, {100, 160}}) {
            expect_same_as_slow(testing::synthetic_image(w, h, w + h), params, preprocessor);
        }
    }
}

TEST(Preprocess, MatchesSlowRestatementForSquashAndLargerResizeThanCrop) {
    for (ResizeMode mode : {ResizeMode::shorter_side, ResizeMode::squash}) {
        PreprocessParams params{.size = 40, .resize_size = 47, .resize_mode = mode};
        Preprocessor preprocessor(params);
        for (const auto& [w, h] : std::vector<std::pair<int, int>>{{47, 47}, {47, 90}, {90, 47}, {13, 200}, {123, 77}}) {
            expect_same_as_slow(testing::synthetic_image(w, h, w * 7 + h), params, preprocessor);
        }
    }
}

TEST(Preprocess, VectorHorizontalPassEqualsThePlainLoop) {
    for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {5, 3}, {17, 9}, {64, 13}, {301, 7}, {1920, 11}}) {
        const Image image = testing::synthetic_image(w, h, w ^ h);
        for (int out_w : {1, 3, 17, w / 3 + 1, 2 * w + 1}) {
            for (Interpolation interpolation : {Interpolation::bilinear, Interpolation::bicubic}) {
                const auto weights = image_detail::compute_axis_weights(w, out_w, 0, out_w, interpolation);
                std::vector<uint8_t> plain(static_cast<size_t>(out_w) * 3 * h), vector(plain.size());
                // The input buffer ends exactly at the last pixel: the kernel must not read past it.
                image_detail::resample_rows(image.rgb.data(), static_cast<size_t>(w) * 3, h, true, weights, plain.data(),
                                            static_cast<size_t>(out_w) * 3, image_detail::Simd::none);
                image_detail::resample_rows(image.rgb.data(), static_cast<size_t>(w) * 3, h, true, weights, vector.data(),
                                            static_cast<size_t>(out_w) * 3, image_detail::Simd::best);
                EXPECT_EQ(plain, vector) << w << "x" << h << " -> " << out_w;
            }
        }
    }
}

TEST(Preprocess, CenterCropOffsetsRoundHalfToEvenLikePython) {
    EXPECT_EQ(image_detail::centered_offset(85), 42);  // 42.5 -> 42
    EXPECT_EQ(image_detail::centered_offset(87), 44);  // 43.5 -> 44
    EXPECT_EQ(image_detail::centered_offset(1), 0);    // 0.5 -> 0
    EXPECT_EQ(image_detail::centered_offset(3), 2);    // 1.5 -> 2
    EXPECT_EQ(image_detail::centered_offset(84), 42);
    EXPECT_EQ(image_detail::centered_offset(0), 0);
    // 451x300 -> shorter side 256: int(256 * 451 / 300) = int(384.85) = 384, left = 64.
    const auto g = image_detail::crop_geometry(451, 300, {.size = 256});
    EXPECT_EQ(g.resized_width, 384);
    EXPECT_EQ(g.resized_height, 256);
    EXPECT_EQ(g.left, 64);
    EXPECT_EQ(g.top, 0);
    // 427x640 -> 256 x int(383.7) = 383; top = round(63.5) = 64.
    const auto portrait = image_detail::crop_geometry(427, 640, {.size = 256});
    EXPECT_EQ(portrait.resized_height, 383);
    EXPECT_EQ(portrait.top, 64);
    // 341 wide at 256 tall -> 341 - 256 = 85 -> left 42 (42.5 rounds down to even).
    EXPECT_EQ(image_detail::crop_geometry(341, 256, {.size = 256}).left, 42);
    EXPECT_EQ(image_detail::crop_geometry(343, 256, {.size = 256}).left, 44);
}

TEST(Preprocess, RunWritesChannelsFirstFloatsOfBytesOver255) {
    const Image image = testing::synthetic_image(120, 80, 4);
    PreprocessParams params{.size = 48};
    Preprocessor preprocessor(params);
    std::vector<float> chw(3 * 48 * 48);
    preprocessor.run(image, chw.data());
    const auto crop = slow_preprocess(image, params);
    for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 48 * 48; ++p) ASSERT_EQ(chw[c * 48 * 48 + p], static_cast<float>(crop[p * 3 + c]) / 255.0f);

    // preprocess_image is the one-shot form.
    std::vector<float> once(chw.size());
    preprocess_image(image, params, once.data());
    EXPECT_EQ(once, chw);
}

TEST(Preprocess, MeanAndStdNormalizeLikeTorchvision) {
    const Image image = testing::synthetic_image(50, 70, 8);
    PreprocessParams params{.size = 32,
                            .mean = {0.48145466f, 0.4578275f, 0.40821073f},
                            .std = {0.26862954f, 0.26130258f, 0.27577711f}};
    std::vector<float> chw(3 * 32 * 32);
    Preprocessor(params).run(image, chw.data());
    const auto crop = slow_preprocess(image, params);
    for (int c = 0; c < 3; ++c) {
        for (int p = 0; p < 32 * 32; ++p) {
            const float scaled = static_cast<float>(crop[p * 3 + c]) / 255.0f;
            ASSERT_EQ(chw[c * 32 * 32 + p], (scaled - params.mean[c]) / params.std[c]);
        }
    }
}

TEST(Preprocess, ReusedPreprocessorFollowsSizeChangesAndRowStrides) {
    PreprocessParams params{.size = 24};
    Preprocessor reused(params);
    std::vector<float> a(3 * 24 * 24), b(a.size());
    for (const auto& [w, h] : std::vector<std::pair<int, int>>{{64, 48}, {48, 64}, {64, 48}, {24, 24}, {100, 30}}) {
        const Image image = testing::synthetic_image(w, h, w * h);
        reused.run(image, a.data());
        Preprocessor(params).run(image, b.data());
        EXPECT_EQ(a, b) << w << "x" << h;
        // The same pixels with padded rows, as video frames come.
        const size_t stride = static_cast<size_t>(w) * 3 + 13;
        std::vector<uint8_t> padded(stride * h, 0xEE);
        for (int y = 0; y < h; ++y) std::copy_n(image.rgb.begin() + static_cast<size_t>(y) * w * 3, w * 3, padded.begin() + y * stride);
        reused.run(padded.data(), w, h, stride, b.data());
        EXPECT_EQ(a, b) << w << "x" << h << " with padded rows";
    }
}

TEST(Preprocess, InvalidParametersAndImagesAreRefused) {
    EXPECT_THROW(Preprocessor({.size = 0}), Error);
    EXPECT_THROW(Preprocessor({.size = 224, .resize_size = 200}), Error);
    EXPECT_THROW(Preprocessor({.size = 224, .std = {1.0f, 0.0f, 1.0f}}), Error);
    Preprocessor preprocessor({.size = 8});
    std::vector<float> out(3 * 8 * 8);
    EXPECT_THROW(preprocessor.run(Image{0, 0, {}}, out.data()), Error);
    EXPECT_THROW(preprocessor.run(Image{4, 4, std::vector<uint8_t>(5)}, out.data()), Error);
    EXPECT_EQ(interpolation_from_name("bicubic"), Interpolation::bicubic);
    EXPECT_EQ(interpolation_from_name("bilinear"), Interpolation::bilinear);
    EXPECT_THROW(interpolation_from_name("nearest"), Error);
}

}  // namespace
}  // namespace mclip
