// The per-format decoders behind decode_image_memory (internal to src/image). Each decodes to
// 8-bit RGB with PIL's convert("RGB") rules, checks the header's dimensions against the pixel
// limit before allocating, and returns the raw EXIF block (a TIFF structure) when asked for it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mclip/image.h"

namespace mclip::image_detail {

struct DecodedImage {
    Image image;
    std::vector<uint8_t> exif;  // empty when the file has none or it was not asked for
};

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options);
DecodedImage decode_png(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options);
DecodedImage decode_webp(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options);

// Throws Error(invalid_input) when width x height exceeds options.max_pixels.
void check_pixel_limit(uint64_t width, uint64_t height, const std::string& name, const DecodeOptions& options);

}  // namespace mclip::image_detail
