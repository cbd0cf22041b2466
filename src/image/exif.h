// EXIF orientation: reading the tag and turning pixels upright (internal to src/image).
#pragma once

#include <cstdint>
#include <span>

#include "mclip/image.h"

namespace mclip::image_detail {

// The Orientation tag (0x0112) of IFD0 in an EXIF block: a TIFF header ("II*\0" or "MM\0*"),
// optionally preceded by "Exif\0\0" as in JPEG APP1 segments. Returns 1 (upright) when the block
// is empty, malformed, has no such tag, or holds a value outside 1..8.
int exif_orientation(std::span<const uint8_t> exif);

// Replaces `image` by its upright form, as PIL's ImageOps.exif_transpose does:
// 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose, 6 rotate 90 clockwise,
// 7 transverse, 8 rotate 90 counter-clockwise. 5-8 swap width and height.
void apply_orientation(Image& image, int orientation);

}  // namespace mclip::image_detail
