#include "bench_image.h"

#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "mclip/error.h"
#include "mclip/image.h"
#include "mclip/preprocess.h"
#include "stats.h"

namespace mclip::tools {
namespace {

constexpr int kWidth = 1920;
constexpr int kHeight = 1080;

// Smooth shading, a few soft-edged discs and sensor-like noise: compresses like a photo (neither
// flat nor random), so decoders do representative work.
Image photo_like_frame() {
    Image frame{kWidth, kHeight, std::vector<uint8_t>(static_cast<size_t>(kWidth) * kHeight * 3)};
    std::mt19937 rng(2024);
    std::normal_distribution<float> noise(0.0f, 3.0f);
    struct Disc {
        float x, y, radius, color[3];
    };
    const Disc discs[] = {{480, 300, 220, {230, 90, 40}}, {1300, 620, 320, {40, 120, 210}}, {900, 880, 150, {250, 230, 90}}};
    for (int y = 0; y < kHeight; ++y) {
        for (int x = 0; x < kWidth; ++x) {
            float rgb[3] = {60.0f + 120.0f * x / kWidth, 80.0f + 100.0f * y / kHeight,
                            140.0f + 60.0f * std::sin(x * 0.004f + y * 0.003f)};
            for (const Disc& d : discs) {
                const float distance = std::hypot(x - d.x, y - d.y);
                const float inside = std::clamp((d.radius - distance) / 6.0f, 0.0f, 1.0f);
                for (int c = 0; c < 3; ++c) rgb[c] += inside * (d.color[c] - rgb[c]);
            }
            uint8_t* out = frame.rgb.data() + (static_cast<size_t>(y) * kWidth + x) * 3;
            for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(std::clamp(rgb[c] + noise(rng), 0.0f, 255.0f));
        }
    }
    return frame;
}

template <typename Work>
std::vector<double> time_ms(int repeats, Work&& work) {
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
        const auto start = std::chrono::steady_clock::now();
        work();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    return ms;
}

}  // namespace

nlohmann::json bench_image_preprocess(int size, int repeats) {
    if (repeats < 1) throw Error(ErrorCode::invalid_argument, "image benchmark repeats must be positive");
    const Image frame = photo_like_frame();
    const auto jpeg = encode_jpeg(frame, {.quality = 90, .subsample_chroma = true});
    const auto png = encode_png(frame);
    size_t checksum = 0;  // keeps the decodes observable
    const auto jpeg_ms = time_ms(repeats, [&] { checksum += decode_image_memory(jpeg, "benchmark.jpg").rgb[0]; });
    const auto png_ms = time_ms(repeats, [&] { checksum += decode_image_memory(png, "benchmark.png").rgb[0]; });

    Preprocessor preprocessor(PreprocessParams{.size = size});
    std::vector<float> input(static_cast<size_t>(3) * size * size);
    const auto first_ms = time_ms(1, [&] { preprocessor.run(frame, input.data()); });
    const auto preprocess_ms = time_ms(repeats, [&] { preprocessor.run(frame, input.data()); });
    if (checksum == SIZE_MAX) throw Error(ErrorCode::internal, "unreachable");

    return {{"width", kWidth},
            {"height", kHeight},
            {"size", size},
            {"repeats", repeats},
            {"jpeg_bytes", jpeg.size()},
            {"png_bytes", png.size()},
            {"decode_jpeg_median_ms", median(jpeg_ms)},
            {"decode_jpeg_p90_ms", percentile(jpeg_ms, 90)},
            {"decode_png_median_ms", median(png_ms)},
            {"decode_png_p90_ms", percentile(png_ms, 90)},
            {"preprocess_first_ms", first_ms[0]},
            {"preprocess_median_ms", median(preprocess_ms)},
            {"preprocess_p90_ms", percentile(preprocess_ms, 90)}};
}

}  // namespace mclip::tools
