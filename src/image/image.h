// Decoding images into 8-bit RGB the way the reference sees them: PIL's
// `Image.open(path).convert("RGB")`. JPEG (libjpeg-turbo), PNG (libpng) and WebP (libwebp) are
// recognized by their content, never by the file name. Bad input (empty, truncated, corrupt, not
// an image, an unsupported format, too many pixels) is refused with Error(invalid_input) naming
// the file and the reason, before any pixel buffer is allocated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace mclip {

// Rows top to bottom, pixels interleaved R, G, B, no padding: rgb.size() == width * height * 3.
struct Image {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> rgb;
};

struct DecodeOptions {
    // Turn the image upright as its EXIF Orientation tag (1-8) says, as phone photos need. The
    // reference (PIL's Image.open) ignores the tag, so parity runs with this off.
    bool apply_exif_orientation = true;
    // Decompression-bomb guard, read from the header before decoding: more pixels than this is an
    // error. The default is PIL's Image.MAX_IMAGE_PIXELS; 0 disables the guard.
    uint64_t max_pixels = 89478485;
};

// Reads and decodes a file; errors name `path`.
Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options = {});

// Decodes an encoded image held in memory; errors name `name` (a file name or a description).
Image decode_image_memory(std::span<const uint8_t> bytes, const std::string& name,
                          const DecodeOptions& options = {});

}  // namespace mclip
