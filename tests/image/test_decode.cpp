// Decoding: every color mode of PNG, JPEG and WebP against pixels derived from PIL's documented
// convert("RGB") rules, EXIF orientation, and the refusal of bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <random>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "common/error.h"
#include "mclip/image.h"
#include "image/image_test_support.h"
#include "support/fixtures.h"

namespace mclip {
namespace {

using testing::exif_block;
using testing::JpegSpec;
using testing::make_jpeg;
using testing::make_png;
using testing::PngSpec;

DecodeOptions no_exif() {
    DecodeOptions options;
    options.apply_exif_orientation = false;
    return options;
}

Image decode(const std::vector<uint8_t>& bytes, const DecodeOptions& options = {}) {
    return decode_image_memory(bytes, "test image", options);
}

// The error decoding `bytes` raises, or a failure if it decodes.
Error decode_error(const std::vector<uint8_t>& bytes, const std::string& name, const DecodeOptions& options = {}) {
    try {
        decode_image_memory(bytes, name, options);
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << name << ": decoded although it should have been refused";
    return Error(ErrorCode::internal, "");
}

int channels_of(int color_type) {
    switch (color_type) {
        case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
        case PNG_COLOR_TYPE_RGB: return 3;
        case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
        default: return 1;
    }
}

// A PNG of random samples in the given mode; `expected` maps one pixel's samples to its RGB.
void check_png_mode(int color_type, int bit_depth, bool interlaced,
                    const std::function<std::array<uint8_t, 3>(const uint16_t*)>& expected, int palette_size = 0) {
    SCOPED_TRACE("color type " + std::to_string(color_type) + ", " + std::to_string(bit_depth) + " bit" +
                 (interlaced ? ", interlaced" : ""));
    PngSpec spec;
    spec.width = 13;  // odd sizes exercise partial bytes and Adam7's uneven passes
    spec.height = 11;
    spec.color_type = color_type;
    spec.bit_depth = bit_depth;
    spec.interlaced = interlaced;
    std::mt19937 rng(color_type * 100 + bit_depth);
    const int channels = channels_of(color_type);
    const uint32_t max_value = color_type == PNG_COLOR_TYPE_PALETTE ? palette_size - 1 : (1u << bit_depth) - 1;
    std::uniform_int_distribution<uint32_t> sample(0, max_value);
    spec.samples.resize(static_cast<size_t>(spec.width) * spec.height * channels);
    for (auto& s : spec.samples) s = static_cast<uint16_t>(sample(rng));
    // Make sure the extremes appear.
    spec.samples[0] = 0;
    spec.samples[channels] = static_cast<uint16_t>(max_value);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < palette_size; ++i) {
            spec.palette.push_back({static_cast<uint8_t>(i * 37 + 5), static_cast<uint8_t>(255 - i * 11), static_cast<uint8_t>(i * 91)});
        }
        spec.transparency.assign(static_cast<size_t>(std::min(palette_size, 3)), 0);  // tRNS: ignored by convert("RGB")
    }
    const Image image = decode(make_png(spec));
    ASSERT_EQ(image.width, spec.width);
    ASSERT_EQ(image.height, spec.height);
    int mismatches = 0;
    for (int p = 0; p < spec.width * spec.height; ++p) {
        const auto want = expected(spec.samples.data() + static_cast<size_t>(p) * channels);
        for (int c = 0; c < 3; ++c) {
            if (image.rgb[3 * p + c] != want[c] && ++mismatches <= 5) {
                ADD_FAILURE() << "pixel " << p << " channel " << c << ": got " << int(image.rgb[3 * p + c])
                              << ", expected " << int(want[c]);
            }
        }
    }
    EXPECT_EQ(mismatches, 0);
}

std::array<uint8_t, 3> gray(int v) { return {static_cast<uint8_t>(v), static_cast<uint8_t>(v), static_cast<uint8_t>(v)}; }

TEST(DecodePng, GrayscaleOfEveryDepthScalesToEightBits) {
    for (bool interlaced : {false, true}) {
        // PIL: "1" -> 0/255, "L;2" -> v * 85, "L;4" -> v * 17, "L" as is.
        check_png_mode(PNG_COLOR_TYPE_GRAY, 1, interlaced, [](const uint16_t* s) { return gray(s[0] * 255); });
        check_png_mode(PNG_COLOR_TYPE_GRAY, 2, interlaced, [](const uint16_t* s) { return gray(s[0] * 85); });
        check_png_mode(PNG_COLOR_TYPE_GRAY, 4, interlaced, [](const uint16_t* s) { return gray(s[0] * 17); });
        check_png_mode(PNG_COLOR_TYPE_GRAY, 8, interlaced, [](const uint16_t* s) { return gray(s[0]); });
    }
}

TEST(DecodePng, SixteenBitGrayscaleClipsAt255LikePil) {
    // PIL opens it as "I;16"; convert("RGB") clips each value to 0..255 (it does not keep the high byte).
    for (bool interlaced : {false, true}) {
        check_png_mode(PNG_COLOR_TYPE_GRAY, 16, interlaced, [](const uint16_t* s) { return gray(std::min<int>(s[0], 255)); });
    }
    PngSpec spec{.width = 4, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 16, .samples = {0, 200, 256, 65535}};
    const Image image = decode(make_png(spec));
    EXPECT_EQ(image.rgb, (std::vector<uint8_t>{0, 0, 0, 200, 200, 200, 255, 255, 255, 255, 255, 255}));
}

TEST(DecodePng, GrayAlphaDropsAlpha) {
    check_png_mode(PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, [](const uint16_t* s) { return gray(s[0]); });
    // 16 bit: PIL unpacks "LA;16B", the high byte of each sample.
    check_png_mode(PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, [](const uint16_t* s) { return gray(s[0] >> 8); });
    check_png_mode(PNG_COLOR_TYPE_GRAY_ALPHA, 16, true, [](const uint16_t* s) { return gray(s[0] >> 8); });
}

TEST(DecodePng, PaletteOfEveryDepthLooksUpColorsIgnoringTransparency) {
    for (bool interlaced : {false, true}) {
        for (int depth : {1, 2, 4, 8}) {
            const int entries = std::min(1 << depth, 200);
            check_png_mode(
                PNG_COLOR_TYPE_PALETTE, depth, interlaced,
                [](const uint16_t* s) {
                    const int i = s[0];
                    return std::array<uint8_t, 3>{static_cast<uint8_t>(i * 37 + 5), static_cast<uint8_t>(255 - i * 11),
                                                  static_cast<uint8_t>(i * 91)};
                },
                entries);
        }
    }
}

TEST(DecodePng, TruecolorKeepsHighBytesAndDropsAlpha) {
    auto rgb8 = [](const uint16_t* s) {
        return std::array<uint8_t, 3>{static_cast<uint8_t>(s[0]), static_cast<uint8_t>(s[1]), static_cast<uint8_t>(s[2])};
    };
    auto rgb16 = [](const uint16_t* s) {
        return std::array<uint8_t, 3>{static_cast<uint8_t>(s[0] >> 8), static_cast<uint8_t>(s[1] >> 8), static_cast<uint8_t>(s[2] >> 8)};
    };
    for (bool interlaced : {false, true}) {
        check_png_mode(PNG_COLOR_TYPE_RGB, 8, interlaced, rgb8);
        check_png_mode(PNG_COLOR_TYPE_RGB, 16, interlaced, rgb16);  // PIL "RGB;16B"
        check_png_mode(PNG_COLOR_TYPE_RGB_ALPHA, 8, interlaced, rgb8);  // alpha dropped, not composited
        check_png_mode(PNG_COLOR_TYPE_RGB_ALPHA, 16, interlaced, rgb16);
    }
}

Image solid_blocks_image() {
    // 24x16 in 8x8 blocks of distinct solid colors: JPEG at quality 100 without subsampling keeps
    // them within a unit or two, and each block is recognizable after a rotation.
    const uint8_t colors[6][3] = {{250, 10, 10}, {10, 250, 10}, {10, 10, 250}, {240, 240, 20}, {20, 240, 240}, {128, 128, 128}};
    Image image{24, 16, std::vector<uint8_t>(24 * 16 * 3)};
    for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 24; ++x) {
            const uint8_t* c = colors[(y / 8) * 3 + x / 8];
            std::copy(c, c + 3, image.rgb.begin() + (y * 24 + x) * 3);
        }
    }
    return image;
}

TEST(DecodeJpeg, ColorImagesMatchLibjpegAccurateDecodeForEverySampling) {
    const Image source = testing::synthetic_image(67, 45, 3);
    for (bool subsample : {false, true}) {
        for (bool progressive : {false, true}) {
            SCOPED_TRACE(std::string(subsample ? "4:2:0" : "4:4:4") + (progressive ? " progressive" : " baseline"));
            JpegSpec spec{.width = source.width, .height = source.height, .quality = 85, .subsample = subsample,
                          .progressive = progressive, .samples = source.rgb};
            const auto jpeg = make_jpeg(spec);
            const Image image = decode(jpeg);
            ASSERT_EQ(image.width, source.width);
            ASSERT_EQ(image.height, source.height);
            EXPECT_EQ(image.rgb, testing::libjpeg_decode(jpeg, 3));
        }
    }
}

TEST(DecodeJpeg, HighQualityDecodeIsCloseToTheEncodedPixels) {
    const Image source = solid_blocks_image();
    const Image image = decode(make_jpeg({.width = 24, .height = 16, .quality = 100, .subsample = false, .samples = source.rgb}));
    int worst = 0;
    for (size_t i = 0; i < source.rgb.size(); ++i) worst = std::max(worst, std::abs(image.rgb[i] - source.rgb[i]));
    EXPECT_LE(worst, 3) << "channels swapped or colors converted wrongly";
}

TEST(DecodeJpeg, GrayscaleIsReplicatedToRgb) {
    const Image source = testing::synthetic_image(33, 17, 5);
    std::vector<uint8_t> luma(33 * 17);
    for (size_t i = 0; i < luma.size(); ++i) luma[i] = source.rgb[3 * i + 1];
    const auto jpeg = make_jpeg({.width = 33, .height = 17, .components = 1, .samples = luma});
    const Image image = decode(jpeg);
    const auto reference = testing::libjpeg_decode(jpeg, 1);
    ASSERT_EQ(image.rgb.size(), reference.size() * 3);
    for (size_t i = 0; i < reference.size(); ++i) {
        ASSERT_EQ(image.rgb[3 * i], reference[i]);
        ASSERT_EQ(image.rgb[3 * i + 1], reference[i]);
        ASSERT_EQ(image.rgb[3 * i + 2], reference[i]);
    }
}

// PIL's CMYK JPEG rule: the decoded values are taken as Adobe-inverted ("CMYK;I"), then
// Convert.c's cmyk2rgb: nk = 255 - K, R = clip(nk - (C * nk) / 255 rounded by (t + (t >> 8)) >> 8, t = C * nk + 128).
std::array<uint8_t, 3> pil_cmyk_to_rgb(const uint8_t* stored) {
    const int k_inverted = 255 - stored[3];
    const int nk = 255 - k_inverted;
    std::array<uint8_t, 3> rgb{};
    for (int c = 0; c < 3; ++c) {
        const int t = (255 - stored[c]) * nk + 128;
        rgb[c] = static_cast<uint8_t>(std::clamp(nk - ((t + (t >> 8)) >> 8), 0, 255));
    }
    return rgb;
}

TEST(DecodeJpeg, CmykAndYcckFollowPilsInvertedAdobeConvention) {
    const Image source = testing::synthetic_image(29, 19, 9);
    std::vector<uint8_t> cmyk;
    for (size_t i = 0; i < source.rgb.size(); i += 3) {
        cmyk.insert(cmyk.end(), {source.rgb[i], source.rgb[i + 1], source.rgb[i + 2], static_cast<uint8_t>(255 - i % 200)});
    }
    for (bool ycck : {false, true}) {
        SCOPED_TRACE(ycck ? "YCCK" : "CMYK");
        const auto jpeg = make_jpeg({.width = 29, .height = 19, .components = 4, .ycck = ycck, .samples = cmyk});
        const auto stored = testing::libjpeg_decode(jpeg, 4);
        const Image image = decode(jpeg);
        ASSERT_EQ(image.rgb.size(), stored.size() / 4 * 3);
        for (size_t p = 0; p < stored.size() / 4; ++p) {
            const auto want = pil_cmyk_to_rgb(stored.data() + 4 * p);
            ASSERT_EQ(image.rgb[3 * p], want[0]) << "pixel " << p;
            ASSERT_EQ(image.rgb[3 * p + 1], want[1]) << "pixel " << p;
            ASSERT_EQ(image.rgb[3 * p + 2], want[2]) << "pixel " << p;
        }
    }
    // Stored (inverted) 255 is no ink: white; stored 0 in the first channel is full cyan.
    const std::vector<uint8_t> no_ink(16 * 16 * 4, 255);
    const Image white = decode(make_jpeg({.width = 16, .height = 16, .components = 4, .quality = 100, .samples = no_ink}));
    EXPECT_GE(white.rgb[0], 253);
    EXPECT_GE(white.rgb[1], 253);
    EXPECT_GE(white.rgb[2], 253);
    std::vector<uint8_t> cyan = no_ink;
    for (size_t i = 0; i < cyan.size(); i += 4) cyan[i] = 0;
    const Image cyan_image = decode(make_jpeg({.width = 16, .height = 16, .components = 4, .quality = 100, .samples = cyan}));
    EXPECT_LE(cyan_image.rgb[0], 2);
    EXPECT_GE(cyan_image.rgb[1], 253);
    EXPECT_GE(cyan_image.rgb[2], 253);
}

TEST(DecodeWebp, LosslessRgbAndRgbaDecodeExactlyWithAlphaDropped) {
    const Image source = testing::synthetic_image(31, 23, 11);
    EXPECT_EQ(decode(testing::make_webp_lossless(source)).rgb, source.rgb);
    std::vector<uint8_t> rgba;
    for (size_t i = 0; i < source.rgb.size(); i += 3) {
        rgba.insert(rgba.end(), {source.rgb[i], source.rgb[i + 1], source.rgb[i + 2], static_cast<uint8_t>(i % 256)});
    }
    const Image image = decode(testing::make_webp_lossless_rgba(31, 23, rgba));
    EXPECT_EQ(image.rgb, source.rgb) << "alpha must be dropped, not composited (transparent pixels keep their color)";
}

TEST(DecodeWebp, LossyIsCloseToTheSource) {
    const Image source = testing::synthetic_image(64, 48, 13);
    const Image image = decode(testing::make_webp_lossy(source, 95));
    ASSERT_EQ(image.width, 64);
    ASSERT_EQ(image.height, 48);
    double total = 0;
    for (size_t i = 0; i < source.rgb.size(); ++i) total += std::abs(image.rgb[i] - source.rgb[i]);
    EXPECT_LT(total / source.rgb.size(), 8.0);
}

TEST(DecodeWebp, AnimationYieldsItsFirstFrame) {
    const Image first = testing::synthetic_image(20, 10, 21);
    const Image second = testing::synthetic_image(20, 10, 22);
    std::vector<uint8_t> frame1, frame2;
    for (size_t i = 0; i < first.rgb.size(); i += 3) {
        frame1.insert(frame1.end(), {first.rgb[i], first.rgb[i + 1], first.rgb[i + 2], 255});
        frame2.insert(frame2.end(), {second.rgb[i], second.rgb[i + 1], second.rgb[i + 2], 255});
    }
    const Image image = decode(testing::make_animated_webp(20, 10, frame1, frame2));
    EXPECT_EQ(image.rgb, first.rgb);
}

// The upright image for an EXIF orientation, built from the three primitive moves the EXIF
// specification describes (mirror left-right, mirror top-bottom, transpose).
Image mirror_lr(const Image& in) {
    Image out = in;
    for (int y = 0; y < in.height; ++y)
        for (int x = 0; x < in.width; ++x)
            for (int c = 0; c < 3; ++c) out.rgb[(y * in.width + x) * 3 + c] = in.rgb[(y * in.width + in.width - 1 - x) * 3 + c];
    return out;
}
Image mirror_tb(const Image& in) {
    Image out = in;
    for (int y = 0; y < in.height; ++y)
        for (int x = 0; x < in.width; ++x)
            for (int c = 0; c < 3; ++c) out.rgb[(y * in.width + x) * 3 + c] = in.rgb[((in.height - 1 - y) * in.width + x) * 3 + c];
    return out;
}
Image transpose(const Image& in) {
    Image out{in.height, in.width, in.rgb};
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x)
            for (int c = 0; c < 3; ++c) out.rgb[(y * out.width + x) * 3 + c] = in.rgb[(x * in.width + y) * 3 + c];
    return out;
}
Image upright(const Image& stored, int orientation) {
    switch (orientation) {
        case 2: return mirror_lr(stored);
        case 3: return mirror_tb(mirror_lr(stored));
        case 4: return mirror_tb(stored);
        case 5: return transpose(stored);
        case 6: return mirror_lr(transpose(stored));  // rotate 90 degrees clockwise
        case 7: return mirror_tb(mirror_lr(transpose(stored)));
        case 8: return mirror_tb(transpose(stored));  // rotate 90 degrees counter-clockwise
        default: return stored;
    }
}

TEST(DecodeExif, JpegOrientationsOneToEightTurnTheImageUpright) {
    const Image source = solid_blocks_image();
    for (bool big_endian : {false, true}) {
        for (int orientation = 1; orientation <= 8; ++orientation) {
            SCOPED_TRACE("orientation " + std::to_string(orientation) + (big_endian ? " (Motorola)" : " (Intel)"));
            JpegSpec spec{.width = 24, .height = 16, .quality = 100, .subsample = false, .samples = source.rgb};
            spec.markers.push_back({JPEG_APP0 + 1, exif_block(orientation, big_endian, true)});
            const auto jpeg = make_jpeg(spec);
            const Image stored = decode(jpeg, no_exif());
            const Image turned = decode(jpeg);
            const Image want = upright(stored, orientation);
            EXPECT_EQ(turned.width, want.width);
            EXPECT_EQ(turned.height, want.height);
            EXPECT_EQ(turned.rgb, want.rgb);
        }
    }
}

TEST(DecodeExif, OrientationSixMovesTheTopLeftCornerToTheTopRight) {
    const Image source = solid_blocks_image();  // top-left block is red, bottom-left is yellow
    JpegSpec spec{.width = 24, .height = 16, .quality = 100, .subsample = false, .samples = source.rgb};
    spec.markers.push_back({JPEG_APP0 + 1, exif_block(6, false, true)});
    const Image turned = decode(make_jpeg(spec));
    ASSERT_EQ(turned.width, 16);
    ASSERT_EQ(turned.height, 24);
    const uint8_t* top_right = turned.rgb.data() + (turned.width - 1) * 3;
    EXPECT_GT(top_right[0], 240);  // red
    EXPECT_LT(top_right[1], 20);
    const uint8_t* top_left = turned.rgb.data();
    EXPECT_GT(top_left[0], 230);  // yellow: the stored bottom-left corner
    EXPECT_GT(top_left[1], 230);
}

TEST(DecodeExif, PngAndWebpCarryOrientationToo) {
    const Image source = testing::synthetic_image(9, 5, 17);
    PngSpec spec{.width = 9, .height = 5, .color_type = PNG_COLOR_TYPE_RGB};
    spec.samples.assign(source.rgb.begin(), source.rgb.end());
    spec.exif = exif_block(8, true, false);
    const auto png = make_png(spec);
    EXPECT_EQ(decode(png, no_exif()).rgb, source.rgb);
    const Image png_turned = decode(png);
    EXPECT_EQ(png_turned.rgb, upright(source, 8).rgb);
    EXPECT_EQ(png_turned.width, 5);

    const auto webp = testing::add_webp_exif(testing::make_webp_lossless(source), exif_block(3, false, false));
    EXPECT_EQ(decode(webp, no_exif()).rgb, source.rgb);
    EXPECT_EQ(decode(webp).rgb, upright(source, 3).rgb);
}

TEST(DecodeExif, MalformedOrMissingTagsLeaveTheImageAsStored) {
    const Image source = solid_blocks_image();
    std::vector<std::vector<uint8_t>> blocks = {
        exif_block(9, false, true),               // out of range
        exif_block(0, true, true),                // out of range
        {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42},  // cut short
    };
    auto pointing_outside = exif_block(6, false, true);
    pointing_outside[10] = 0xF0;  // IFD0 offset far past the end
    blocks.push_back(pointing_outside);
    for (const auto& block : blocks) {
        JpegSpec spec{.width = 24, .height = 16, .quality = 100, .subsample = false, .samples = source.rgb};
        spec.markers.push_back({JPEG_APP0 + 1, block});
        const auto jpeg = make_jpeg(spec);
        const Image image = decode(jpeg);
        EXPECT_EQ(image.width, 24);
        EXPECT_EQ(image.rgb, decode(jpeg, no_exif()).rgb);
    }
}

// --- bad input -----------------------------------------------------------------------------

void expect_message(const Error& e, const std::string& name, const std::string& reason) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input) << e.what();
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
}

TEST(DecodeBadInput, TruncatedFixtureJpegIsRefused) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto path = fixtures / "images" / "truncated.jpg";
    try {
        decode_image_file(path);
        FAIL() << "truncated.jpg decoded";
    } catch (const Error& e) {
        expect_message(e, path.string(), "truncated");
    }
}

TEST(DecodeBadInput, TruncatedFilesOfEveryFormatAreRefused) {
    const Image source = testing::synthetic_image(40, 30, 7);
    auto jpeg = make_jpeg({.width = 40, .height = 30, .samples = source.rgb});
    auto progressive = make_jpeg({.width = 40, .height = 30, .progressive = true, .samples = source.rgb});
    PngSpec spec{.width = 40, .height = 30, .color_type = PNG_COLOR_TYPE_RGB};
    spec.samples.assign(source.rgb.begin(), source.rgb.end());
    auto png = make_png(spec);
    auto webp = testing::make_webp_lossy(source, 80);
    for (auto* bytes : {&jpeg, &progressive, &png, &webp}) bytes->resize(bytes->size() * 2 / 3);
    expect_message(decode_error(jpeg, "cut.jpg"), "cut.jpg", "truncated");
    expect_message(decode_error(progressive, "cut-progressive.jpg"), "cut-progressive.jpg", "truncated");
    expect_message(decode_error(png, "cut.png"), "cut.png", "truncated");
    expect_message(decode_error(webp, "cut.webp"), "cut.webp", "truncated");
}

TEST(DecodeBadInput, EmptyTextAndUnsupportedFormatsAreRefused) {
    expect_message(decode_error({}, "empty.jpg"), "empty.jpg", "empty");
    const std::string text = "just some text, not an image\n";
    expect_message(decode_error({text.begin(), text.end()}, "notes.png"), "notes.png", "not an image");
    const std::string gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    expect_message(decode_error({gif.begin(), gif.end()}, "anim.gif"), "anim.gif", "unsupported image format GIF");
    const std::string bmp = "BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00";
    expect_message(decode_error({bmp.begin(), bmp.end()}, "x.bmp"), "x.bmp", "unsupported image format BMP");
}

TEST(DecodeBadInput, CorruptDataIsRefused) {
    std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12, 0x34, 0x56};
    expect_message(decode_error(jpeg, "bad.jpg"), "bad.jpg", "JPEG");
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'X', 1, 2, 3};
    expect_message(decode_error(png, "bad.png"), "bad.png", "PNG");
    std::vector<uint8_t> webp = {'R', 'I', 'F', 'F', 30, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X', 1, 2, 3, 4};
    expect_message(decode_error(webp, "bad.webp"), "bad.webp", "WebP");
}

TEST(DecodeBadInput, MissingFileNamesThePath) {
    try {
        decode_image_file("/nonexistent/photo.jpg");
        FAIL() << "decoded a missing file";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::io);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/photo.jpg"), std::string::npos) << e.what();
    }
}

// Rewrites a PNG's IHDR size (and its CRC) so that the header claims a huge image.
std::vector<uint8_t> png_claiming(std::vector<uint8_t> png, uint32_t width, uint32_t height) {
    auto put32 = [&](size_t at, uint32_t v) {
        for (int i = 0; i < 4; ++i) png[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
    };
    put32(16, width);  // signature 8, length 4, "IHDR" 4
    put32(20, height);
    put32(29, static_cast<uint32_t>(crc32(0, png.data() + 12, 17)));
    return png;
}

// Rewrites a baseline JPEG's SOF0 size.
std::vector<uint8_t> jpeg_claiming(std::vector<uint8_t> jpeg, uint16_t width, uint16_t height) {
    for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
        if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
            jpeg[i + 5] = static_cast<uint8_t>(height >> 8);
            jpeg[i + 6] = static_cast<uint8_t>(height);
            jpeg[i + 7] = static_cast<uint8_t>(width >> 8);
            jpeg[i + 8] = static_cast<uint8_t>(width);
            return jpeg;
        }
    }
    ADD_FAILURE() << "no SOF0 marker";
    return jpeg;
}

TEST(DecodeBadInput, DecompressionBombsAreRefusedFromTheHeader) {
    const Image source = testing::synthetic_image(16, 16, 1);
    // 1,000,000 x 1,000,000 would need 3 TB; refused before any allocation.
    PngSpec spec{.width = 16, .height = 16, .color_type = PNG_COLOR_TYPE_RGB};
    spec.samples.assign(source.rgb.begin(), source.rgb.end());
    const auto huge_png = png_claiming(make_png(spec), 1000000, 1000000);
    expect_message(decode_error(huge_png, "bomb.png"), "bomb.png", "1000000000000 pixels, more than the limit of 89478485");
    const auto huge_jpeg = jpeg_claiming(make_jpeg({.width = 16, .height = 16, .samples = source.rgb}), 65000, 65000);
    expect_message(decode_error(huge_jpeg, "bomb.jpg"), "bomb.jpg", "more than the limit");

    // The limit is configurable: exactly at the limit decodes, one pixel over is refused.
    const auto webp = testing::make_webp_lossless(source);
    DecodeOptions options;
    options.max_pixels = 256;
    EXPECT_EQ(decode(webp, options).width, 16);
    options.max_pixels = 255;
    expect_message(decode_error(webp, "small.webp", options), "small.webp", "more than the limit of 255");
    expect_message(decode_error(make_png(spec), "small.png", options), "small.png", "more than the limit of 255");
    options.max_pixels = 0;  // no limit
    EXPECT_EQ(decode(make_png(spec), options).width, 16);
}

TEST(DecodeBadInput, EveryTruncationAndByteFlipEitherDecodesOrThrows) {
    const Image source = testing::synthetic_image(24, 20, 5);
    PngSpec spec{.width = 24, .height = 20, .color_type = PNG_COLOR_TYPE_RGB};
    spec.samples.assign(source.rgb.begin(), source.rgb.end());
    const std::vector<std::vector<uint8_t>> files = {
        make_jpeg({.width = 24, .height = 20, .samples = source.rgb}),
        make_jpeg({.width = 24, .height = 20, .progressive = true, .samples = source.rgb}),
        make_png(spec),
        testing::make_webp_lossy(source, 70),
        testing::make_webp_lossless(source),
    };
    std::mt19937 rng(99);
    int refused = 0;
    for (const auto& file : files) {
        for (size_t length = 0; length < file.size(); length += 1 + file.size() / 97) {
            try {
                decode({file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length)});
            } catch (const Error& e) {
                ++refused;
                EXPECT_EQ(e.code(), ErrorCode::invalid_input) << e.what();
            }
        }
        for (int trial = 0; trial < 100; ++trial) {
            auto damaged = file;
            damaged[std::uniform_int_distribution<size_t>(0, damaged.size() - 1)(rng)] ^= 0x5A;
            try {
                const Image image = decode(damaged);
                EXPECT_EQ(image.rgb.size(), static_cast<size_t>(image.width) * image.height * 3);
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), ErrorCode::invalid_input) << e.what();
            }
        }
    }
    EXPECT_GT(refused, 300);  // nearly every truncation is refused
}

}  // namespace
}  // namespace mclip
