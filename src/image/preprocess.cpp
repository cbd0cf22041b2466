#include "mclip/preprocess.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "image/resample.h"

namespace mclip {

using image_detail::AxisWeights;
using image_detail::CropGeometry;

Interpolation interpolation_from_name(std::string_view name) {
    if (name == "bilinear") return Interpolation::bilinear;
    if (name == "bicubic") return Interpolation::bicubic;
    throw Error(ErrorCode::invalid_argument,
                "unknown interpolation '" + std::string(name) + "' (expected bilinear or bicubic)");
}

const char* to_string(Interpolation interpolation) {
    return interpolation == Interpolation::bicubic ? "bicubic" : "bilinear";
}

ResizeMode resize_mode_from_name(std::string_view name) {
    if (name == "shorter_side") return ResizeMode::shorter_side;
    if (name == "squash") return ResizeMode::squash;
    throw Error(ErrorCode::invalid_argument,
                "unknown resize mode '" + std::string(name) + "' (expected shorter_side or squash)");
}

const char* to_string(ResizeMode mode) { return mode == ResizeMode::squash ? "squash" : "shorter_side"; }

// Everything that depends on the input size is computed once per size and kept.
struct Preprocessor::State {
    int width = 0;  // input size the plan is for; 0 while there is none
    int height = 0;
    CropGeometry geometry{};
    bool resize_horizontally = false;
    bool resize_vertically = false;
    AxisWeights columns;  // weights of the crop's columns, when resizing horizontally
    AxisWeights rows;     // weights of the crop's rows, when resizing vertically
    int first_row = 0;    // input rows [first_row, last_row) feed the crop
    int last_row = 0;
    std::vector<uint8_t> horizontal;  // the horizontal pass over those rows, crop columns only
    std::vector<int32_t> accumulator;
    std::vector<uint8_t> crop;        // resize_crop's output inside run()
    float to_tensor[3][256];          // (v / 255 - mean[c]) / std[c] for every byte v
};

Preprocessor::Preprocessor(const PreprocessParams& params) : params_(params), state_(std::make_unique<State>()) {
    if (params.size < 1) {
        throw Error(ErrorCode::invalid_argument, "preprocessing size must be positive, got " + std::to_string(params.size));
    }
    if (params.resize_size != 0 && params.resize_size < params.size) {
        throw Error(ErrorCode::invalid_argument, "resize size " + std::to_string(params.resize_size) +
                                                     " is smaller than the crop size " + std::to_string(params.size));
    }
    for (int c = 0; c < 3; ++c) {
        if (params.std[c] == 0.0f) throw Error(ErrorCode::invalid_argument, "normalization std must not be zero");
        for (int v = 0; v < 256; ++v) {
            // torchvision: ToTensor divides in float32, Normalize subtracts then divides.
            state_->to_tensor[c][v] = (static_cast<float>(v) / 255.0f - params.mean[c]) / params.std[c];
        }
    }
    const size_t side = static_cast<size_t>(params.size);
    state_->accumulator.resize(side * 3);
    state_->crop.resize(side * side * 3);
}

Preprocessor::~Preprocessor() = default;
Preprocessor::Preprocessor(Preprocessor&&) noexcept = default;
Preprocessor& Preprocessor::operator=(Preprocessor&&) noexcept = default;

void Preprocessor::resize_crop(const uint8_t* rgb, int width, int height, size_t stride, uint8_t* out_rgb) {
    State& s = *state_;
    const int size = params_.size;
    const size_t row_bytes = static_cast<size_t>(size) * 3;
    if (width < 1 || height < 1 || stride < static_cast<size_t>(width) * 3) {
        throw Error(ErrorCode::invalid_argument, "cannot preprocess an image of " + std::to_string(width) + "x" +
                                                     std::to_string(height) + " with rows " + std::to_string(stride) +
                                                     " bytes apart");
    }
    if (s.width != width || s.height != height) {
        s.width = 0;  // no plan matches while this one is incomplete (a throw below leaves none)
        s.geometry = image_detail::crop_geometry(width, height, params_);
        const CropGeometry& g = s.geometry;
        s.resize_horizontally = g.resized_width != width;
        s.resize_vertically = g.resized_height != height;
        if (s.resize_horizontally) {
            s.columns = image_detail::compute_axis_weights(width, g.resized_width, g.left, size, params_.interpolation);
        }
        if (s.resize_vertically) {
            s.rows = image_detail::compute_axis_weights(height, g.resized_height, g.top, size, params_.interpolation);
            s.first_row = height;
            s.last_row = 0;
            for (int i = 0; i < size; ++i) {
                s.first_row = std::min(s.first_row, s.rows.start[i]);
                s.last_row = std::max(s.last_row, s.rows.start[i] + s.rows.count[i]);
            }
        } else {
            s.first_row = g.top;
            s.last_row = g.top + size;
        }
        if (s.resize_horizontally) s.horizontal.resize(static_cast<size_t>(s.last_row - s.first_row) * row_bytes);
        s.width = width;
        s.height = height;
    }

    // The rows the vertical pass (or the crop) reads: the horizontal pass's output, or the input.
    const uint8_t* source;
    size_t source_stride;
    int source_first_row;
    if (s.resize_horizontally) {
        image_detail::resample_rows(rgb + static_cast<size_t>(s.first_row) * stride, stride, s.last_row - s.first_row,
                                    s.last_row == height, s.columns, s.horizontal.data(), row_bytes);
        source = s.horizontal.data();
        source_stride = row_bytes;
        source_first_row = s.first_row;
    } else {
        source = rgb + static_cast<size_t>(s.geometry.left) * 3;
        source_stride = stride;
        source_first_row = 0;
    }
    for (int i = 0; i < size; ++i) {
        uint8_t* out = out_rgb + static_cast<size_t>(i) * row_bytes;
        if (s.resize_vertically) {
            image_detail::resample_column_row(source, source_stride, source_first_row, s.rows, i, size * 3,
                                              s.accumulator.data(), out);
        } else {
            std::memcpy(out, source + static_cast<size_t>(s.geometry.top + i - source_first_row) * source_stride, row_bytes);
        }
    }
}

void Preprocessor::run(const uint8_t* rgb, int width, int height, size_t stride, float* out_chw) {
    resize_crop(rgb, width, height, stride, state_->crop.data());
    const size_t plane = static_cast<size_t>(params_.size) * params_.size;
    const uint8_t* crop = state_->crop.data();
    for (int c = 0; c < 3; ++c) {
        const float* table = state_->to_tensor[c];
        float* out = out_chw + plane * c;
        for (size_t p = 0; p < plane; ++p) out[p] = table[crop[3 * p + c]];
    }
}

void Preprocessor::run(const Image& image, float* out_chw) {
    if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
        throw Error(ErrorCode::invalid_argument, "image of " + std::to_string(image.width) + "x" +
                                                     std::to_string(image.height) + " holds " +
                                                     std::to_string(image.rgb.size()) + " bytes, not width*height*3");
    }
    run(image.rgb.data(), image.width, image.height, static_cast<size_t>(image.width) * 3, out_chw);
}

void preprocess_image(const Image& image, const PreprocessParams& params, float* out_chw) {
    Preprocessor(params).run(image, out_chw);
}

}  // namespace mclip
