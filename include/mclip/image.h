// Images in and out of mclip: decoding into 8-bit RGB the way the reference sees them (PIL's
// `Image.open(path).convert("RGB")`), and encoding RGB back to JPEG or PNG. JPEG (libjpeg-turbo),
// PNG (libpng) and WebP (libwebp) are recognized by their content, never by the file name. Bad
// input (empty, truncated, corrupt, not an image, an unsupported format, too many pixels) is
// refused with Error(invalid_input) naming the file and the reason, before any pixel buffer is
// allocated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "mclip/export.h"

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
MCLIP_API Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options = {});

// Decodes an encoded image held in memory; errors name `name` (a file name or a description).
MCLIP_API Image decode_image_memory(std::span<const uint8_t> bytes, const std::string& name,
                                    const DecodeOptions& options = {});

struct JpegEncodeOptions {
    int quality = 90;               // 1..100
    bool subsample_chroma = true;   // 4:2:0 like most cameras; false keeps 4:4:4
};

// Throw Error(invalid_argument) for an image whose buffer does not match its size.
MCLIP_API std::vector<uint8_t> encode_jpeg(const Image& image, const JpegEncodeOptions& options = {});
MCLIP_API std::vector<uint8_t> encode_png(const Image& image);

}  // namespace mclip
