// Decoded frames to 8-bit RGB at their own size, as the reference preprocessing expects its input
// (PIL's convert("RGB") of a picture). No scaling happens here: the resize must be PIL's, done
// afterwards by the Preprocessor, so that `mclip live` and `mclip classify` see the same pixels.
//
// 8-bit formats (planar, semi-planar and packed YUV at any chroma subsampling, packed and planar
// RGB, gray: full range unless the frame says limited) are read directly, and only the requested rectangle is converted, so the caller can
// skip the pixels the center crop throws away. YUV uses the frame's matrix (BT.601 when
// unspecified, BT.709, BT.2020, SMPTE 240M, FCC) and range (limited, or full for JPEG-range),
// with each chroma sample applied to the pixels it covers (nearest; no chroma filtering, so a
// pixel's value never depends on which rectangle was asked for):
//   Y' = (Y - 16) / 219, Cb = (U - 128) / 224, Cr = (V - 128) / 224     (full range: /255, no 16)
//   R = Y' + 2(1 - Kr) Cr,  B = Y' + 2(1 - Kb) Cb,
//   G = Y' - (2 Kb (1 - Kb) / Kg) Cb - (2 Kr (1 - Kr) / Kg) Cr,  Kg = 1 - Kr - Kb
// in 16.16 fixed point, rounded, clipped to [0, 255]. Other formats swscale can read (high bit
// depth, palettes, floats) go through swscale to RGB24 first; the rest (hardware surfaces) are
// refused with Error(unsupported).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mclip/image.h"

extern "C" {
struct AVFrame;
}

namespace mclip {

// Columns [x0, x1) and rows [y0, y1).
struct PixelRect {
    int x0 = 0;
    int y0 = 0;
    int x1 = 0;
    int y1 = 0;
};

class RgbConverter {
public:
    RgbConverter();
    ~RgbConverter();
    RgbConverter(const RgbConverter&) = delete;
    RgbConverter& operator=(const RgbConverter&) = delete;

    // Writes the pixels of `region` to rgb + y * stride + x * 3, the same places they have in the
    // frame; the rest of `rgb` is left untouched. Throws Error(unsupported) for a pixel format it
    // cannot read.
    void convert(const AVFrame& frame, const PixelRect& region, uint8_t* rgb, size_t stride);
    // The whole frame.
    Image convert(const AVFrame& frame);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace mclip
