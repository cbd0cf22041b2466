// Builders of test images for the decoder tests: PNG, JPEG and WebP files in every mode, encoded
// here with libpng, libjpeg and libwebp directly (not through the code under test), EXIF blocks,
// and synthetic pixel content.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mclip/image.h"

namespace mclip::testing {

// Smooth gradients plus seeded noise and a few hard edges: photo-like content with detail at every scale.
Image synthetic_image(int width, int height, uint32_t seed);

// An EXIF block (TIFF structure) whose IFD0 holds one Orientation tag. With `jpeg_prefix` it
// starts with "Exif\0\0", as inside a JPEG APP1 segment.
std::vector<uint8_t> exif_block(int orientation, bool big_endian, bool jpeg_prefix);

struct PngSpec {
    int width = 0;
    int height = 0;
    int color_type = 0;  // PNG_COLOR_TYPE_*
    int bit_depth = 8;
    bool interlaced = false;
    // One value per sample, row-major, samples of a pixel adjacent (gray: 1, gray+alpha: 2,
    // palette index: 1, RGB: 3, RGBA: 4), each below 2^bit_depth.
    std::vector<uint16_t> samples{};
    std::vector<std::array<uint8_t, 3>> palette{};  // PLTE entries
    std::vector<uint8_t> transparency{};           // tRNS entries for palette images
    std::vector<uint8_t> exif{};                   // eXIf chunk content, when not empty
};
std::vector<uint8_t> make_png(const PngSpec& spec);

struct JpegSpec {
    int width = 0;
    int height = 0;
    int components = 3;       // 1 (gray), 3 (RGB input) or 4 (CMYK input)
    bool ycck = false;        // with 4 components: store as YCCK (Adobe transform 2) instead of CMYK
    int quality = 90;
    bool subsample = true;    // 4:2:0 chroma for 3-component images
    bool progressive = false;
    std::vector<uint8_t> samples{};                         // width * height * components
    std::vector<std::pair<int, std::vector<uint8_t>>> markers{};  // (marker code, payload) after SOI/JFIF
};
std::vector<uint8_t> make_jpeg(const JpegSpec& spec);

// libjpeg's own decode of `jpeg` to its native output (gray, RGB, or CMYK as stored), with the
// library defaults (accurate integer IDCT, fancy upsampling).
std::vector<uint8_t> libjpeg_decode(const std::vector<uint8_t>& jpeg, int components);

std::vector<uint8_t> make_webp_lossless(const Image& rgb);
std::vector<uint8_t> make_webp_lossless_rgba(int width, int height, const std::vector<uint8_t>& rgba);
std::vector<uint8_t> make_webp_lossy(const Image& rgb, float quality);
// An animation of two lossless full-canvas frames.
std::vector<uint8_t> make_animated_webp(int width, int height, const std::vector<uint8_t>& frame1_rgba,
                                        const std::vector<uint8_t>& frame2_rgba);
std::vector<uint8_t> add_webp_exif(const std::vector<uint8_t>& webp, const std::vector<uint8_t>& exif);

std::vector<uint8_t> read_bytes(const std::string& path);

}  // namespace mclip::testing
