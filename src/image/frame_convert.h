// Frames in memory (mclip::FrameView: packed RGB/RGBA/BGR, or NV12 from cameras and hardware
// decoders) → 8-bit RGB images, for the preprocessing that expects PIL's convert("RGB") pixels.
//
// NV12 uses the frame's matrix and range, as the video pipeline's converter (video/rgb_convert.h):
//   Y' = (Y - 16) / 219, Cb = (U - 128) / 224, Cr = (V - 128) / 224     (full range: /255, no 16)
//   R = Y' + 2(1 - Kr) Cr,  B = Y' + 2(1 - Kb) Cb,
//   G = Y' - (2 Kb (1 - Kb) / Kg) Cb - (2 Kr (1 - Kr) / Kg) Cr,  Kg = 1 - Kr - Kb
// with each chroma sample applied to the 2x2 pixels it covers (nearest, no filtering), in 16.16
// fixed point, rounded and clipped to [0, 255].
#pragma once

#include "mclip/image.h"
#include "mclip/mclip.h"

namespace mclip {

// Throws Error(invalid_argument) for a frame whose size, planes or strides are unusable.
Image frame_to_rgb(const FrameView& frame);

}  // namespace mclip
