#include "video/frame_tensor.h"

#include <algorithm>

extern "C" {
#include <libavutil/frame.h>
}

#include "common/error.h"
#include "image/resample.h"

namespace mclip {

FrameTensorizer::FrameTensorizer(const PreprocessParams& params) : preprocessor_(params) {}

PixelRect FrameTensorizer::footprint(int width, int height) const {
    const PreprocessParams& params = preprocessor_.params();
    const image_detail::CropGeometry g = image_detail::crop_geometry(width, height, params);
    // An axis that is not resized is only cropped; a resized one reads what its crop outputs'
    // filter windows cover.
    const auto span = [&](int in_size, int resized, int first) {
        if (resized == in_size) return std::pair{first, first + params.size};
        const auto w = image_detail::compute_axis_weights(in_size, resized, first, params.size, params.interpolation);
        int lo = in_size, hi = 0;
        for (size_t i = 0; i < w.start.size(); ++i) {
            lo = std::min(lo, w.start[i]);
            hi = std::max(hi, w.start[i] + w.count[i]);
        }
        return std::pair{lo, hi};
    };
    const auto [x0, x1] = span(width, g.resized_width, g.left);
    const auto [y0, y1] = span(height, g.resized_height, g.top);
    return {x0, y0, x1, y1};
}

void FrameTensorizer::run(const AVFrame& frame, float* out_chw) {
    if (frame.width != width_ || frame.height != height_) {
        footprint_ = footprint(frame.width, frame.height);
        // new[] without () leaves the bytes uninitialized: pages outside the footprint stay unmapped.
        rgb_.reset(new uint8_t[static_cast<size_t>(frame.width) * frame.height * 3]);
        width_ = frame.width;
        height_ = frame.height;
    }
    const size_t stride = static_cast<size_t>(width_) * 3;
    converter_.convert(frame, footprint_, rgb_.get(), stride);
    preprocessor_.run(rgb_.get(), width_, height_, stride, out_chw);
}

Image FrameTensorizer::to_image(const AVFrame& frame) { return converter_.convert(frame); }

}  // namespace mclip
