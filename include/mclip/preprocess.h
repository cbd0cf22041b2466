// The reference preprocessing, bit for bit: torchvision Resize (PIL's antialiased resize on 8-bit
// pixels), CenterCrop and ToTensor, then an optional per-channel (x - mean) / std.
//   resize:  shorter side -> resize_size, longer -> int(resize_size * long / short)  (or squash:
//            both sides -> resize_size), PIL's fixed-point separable filter, horizontal pass first
//   crop:    size x size at top = round((h - size) / 2), left = round((w - size) / 2), Python
//            rounding (half to even: 42.5 -> 42, 43.5 -> 44)
//   tensor:  float32 CHW, x / 255, then (x - mean[c]) / std[c]
// Only the pixels that survive the crop are computed; they equal PIL's because every output pixel
// of a separable resize depends only on its own row's and column's weights.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "mclip/export.h"
#include "mclip/image.h"

namespace mclip {

enum class Interpolation {
    bilinear,  // PIL BILINEAR (triangle filter, support 1 scaled by the shrink factor)
    bicubic,   // PIL BICUBIC (Keys cubic, a = -0.5, support 2 scaled by the shrink factor)
};

enum class ResizeMode {
    shorter_side,  // torchvision Resize(n): keeps the aspect ratio
    squash,        // torchvision Resize((n, n)): both sides to n
};

// A model's preprocessing, as its model file stores it: resize, center crop (the only crop there
// is), normalization.
struct PreprocessParams {
    int size = 256;       // the output is size x size
    int resize_size = 0;  // the resize target before the center crop; 0 means `size`
    ResizeMode resize_mode = ResizeMode::shorter_side;
    Interpolation interpolation = Interpolation::bilinear;
    // MobileCLIP v1 uses none (0 and 1 leave x / 255 unchanged, exactly); OpenAI's are
    // mean (0.48145466, 0.4578275, 0.40821073), std (0.26862954, 0.26130258, 0.27577711).
    std::array<float, 3> mean{0.0f, 0.0f, 0.0f};
    std::array<float, 3> std{1.0f, 1.0f, 1.0f};
};

// "bilinear" or "bicubic"; anything else is Error(invalid_argument).
MCLIP_API Interpolation interpolation_from_name(std::string_view name);
MCLIP_API const char* to_string(Interpolation interpolation);
// "shorter_side" or "squash"; anything else is Error(invalid_argument).
MCLIP_API ResizeMode resize_mode_from_name(std::string_view name);
MCLIP_API const char* to_string(ResizeMode mode);

// Preprocesses images one after another, reusing its buffers and the resize weights of the last
// input size (video frames all share one size). Not thread-safe: use one per thread.
class MCLIP_API Preprocessor {
public:
    // Throws Error(invalid_argument) for a size below 1, resize_size below size, or a zero std.
    explicit Preprocessor(const PreprocessParams& params);
    ~Preprocessor();
    Preprocessor(Preprocessor&&) noexcept;
    Preprocessor& operator=(Preprocessor&&) noexcept;

    const PreprocessParams& params() const { return params_; }

    // Resize and center crop of interleaved RGB8 pixels whose rows are `stride` bytes apart, into
    // size * size * 3 bytes of interleaved RGB8.
    void resize_crop(const uint8_t* rgb, int width, int height, size_t stride, uint8_t* out_rgb);

    // resize_crop, then ToTensor and normalization into float32 [3, size, size].
    void run(const uint8_t* rgb, int width, int height, size_t stride, float* out_chw);
    void run(const Image& image, float* out_chw);

private:
    struct State;
    PreprocessParams params_;
    std::unique_ptr<State> state_;
};

// One image, without reuse: writes float32 [3, params.size, params.size] to out_chw.
MCLIP_API void preprocess_image(const Image& image, const PreprocessParams& params, float* out_chw);

}  // namespace mclip
