// PIL's resampling, piece by piece (internal to src/image; tests check each piece).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mclip/preprocess.h"

namespace mclip::image_detail {

// Fixed point of PIL's 8-bit resampling: weights carry 22 fractional bits (32 - 8 - 2, leaving
// room for the sum of 8-bit products with weights that may overshoot 1) and every sum starts at
// half a unit so that the final shift rounds.
constexpr int kWeightBits = 22;

// Where the crop lies in the resized image.
struct CropGeometry {
    int resized_width;
    int resized_height;
    int left;
    int top;
};

// torchvision's output size of Resize and CenterCrop's offsets for a width x height input.
// Throws Error(invalid_argument) for an empty input or a resized side beyond INT_MAX.
CropGeometry crop_geometry(int width, int height, const PreprocessParams& params);

// Python's int(round(excess / 2.0)) for excess >= 0: halves round to the even neighbor.
int centered_offset(int excess);

// The weights PIL computes (precompute_coeffs + normalize_coeffs_8bpc) for the outputs
// first .. first + count - 1 of one axis resized from in_size to out_size.
struct AxisWeights {
    int taps = 0;                  // weights stored per output
    std::vector<int> start;        // first input index of each output
    std::vector<int> count;        // inputs used by each output (<= taps)
    std::vector<int32_t> weights;  // [output][tap], fixed point
};
AxisWeights compute_axis_weights(int in_size, int out_size, int first, int count, Interpolation interpolation);

enum class Simd { none, best };

// The horizontal pass over `count` rows of interleaved RGB, `in_stride` bytes apart: output pixel
// j of a row from input pixels weights.start[j] ... (RGB) into rows `out_stride` bytes apart.
// `ends_buffer` says that the last row ends the readable memory (the vector kernel reads one
// byte past a pixel, so that row is done without it). Simd::none forces the plain loop.
void resample_rows(const uint8_t* in, size_t in_stride, int count, bool ends_buffer, const AxisWeights& weights,
                   uint8_t* out, size_t out_stride, Simd simd = Simd::best);

// Output row `output` of the vertical pass over `channels` bytes per row: `source` holds the rows
// first_row, first_row + 1, ... of the input, `stride` bytes apart. `accumulator` is scratch space
// of `channels` entries.
void resample_column_row(const uint8_t* source, size_t stride, int first_row, const AxisWeights& weights, int output,
                         int channels, int32_t* accumulator, uint8_t* out_row);

}  // namespace mclip::image_detail
