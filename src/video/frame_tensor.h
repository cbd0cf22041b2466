// Video frame → model input: the frame's pixels as RGB (rgb_convert.h), then the reference
// preprocessing (image/preprocess.h) exactly as `mclip classify` applies it to a decoded image.
//
// Only the rectangle of the frame that the resize and center crop read is converted to RGB: for
// a 1280x720 frame and a 256 input that is the middle 720 or so columns. The RGB buffer has the
// frame's size (so the Preprocessor addresses it as a whole frame) but is allocated once without
// initialization, so the memory outside the rectangle is never touched.
#pragma once

#include <cstdint>
#include <memory>

#include "mclip/image.h"
#include "mclip/preprocess.h"
#include "video/rgb_convert.h"

extern "C" {
struct AVFrame;
}

namespace mclip {

class FrameTensorizer {
public:
    explicit FrameTensorizer(const PreprocessParams& params);

    int input_size() const { return preprocessor_.params().size; }
    // Writes float32 [3, size, size].
    void run(const AVFrame& frame, float* out_chw);
    // The frame's RGB pixels, as `run` sees them (for --dump-frames).
    Image to_image(const AVFrame& frame);
    // The rectangle `run` converts for frames of this size.
    PixelRect footprint(int width, int height) const;

private:
    Preprocessor preprocessor_;
    RgbConverter converter_;
    std::unique_ptr<uint8_t[]> rgb_;
    int width_ = 0;
    int height_ = 0;
    PixelRect footprint_;
};

}  // namespace mclip
