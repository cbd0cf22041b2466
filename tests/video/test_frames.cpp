// Frames to pixels: the YUV/RGB reader, the frame-to-tensor step and the overlay.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

extern "C" {
#include <libavutil/frame.h>
}

#include "common/error.h"
#include "mclip/preprocess.h"
#include "video/bitmap_font.h"
#include "video/frame_tensor.h"
#include "video/overlay.h"
#include "video/rgb_convert.h"
#include "video_test_util.h"

namespace {

using mclip::AvFramePtr;
using mclip::PixelRect;
using mclip::testing::fill_random;
using mclip::testing::make_av_frame;

struct Rgb {
    int r, g, b;
};

Rgb pixel(const mclip::Image& image, int x, int y) {
    const uint8_t* p = image.rgb.data() + (static_cast<size_t>(y) * image.width + x) * 3;
    return {p[0], p[1], p[2]};
}

AvFramePtr uniform_yuv444(int y, int u, int v, AVColorSpace colorspace, AVColorRange range) {
    AvFramePtr frame = make_av_frame(AV_PIX_FMT_YUV444P, 4, 4);
    frame->colorspace = colorspace;
    frame->color_range = range;
    const int values[3] = {y, u, v};
    for (int p = 0; p < 3; ++p) {
        for (int row = 0; row < 4; ++row) std::memset(frame->data[p] + row * frame->linesize[p], values[p], 4);
    }
    return frame;
}

// Colours from the standards' own encoding tables, decoded back: 8-bit quantization allows 2.
TEST(RgbConverter, DecodesStandardColourCodes) {
    struct Case {
        AVColorSpace colorspace;
        AVColorRange range;
        int y, u, v;
        Rgb expected;
    };
    const Case cases[] = {
        {AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_MPEG, 16, 128, 128, {0, 0, 0}},        // black
        {AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_MPEG, 235, 128, 128, {255, 255, 255}}, // white
        {AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG, 81, 90, 240, {255, 0, 0}},          // BT.601 red
        {AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG, 145, 54, 34, {0, 255, 0}},          // BT.601 green
        {AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG, 41, 240, 110, {0, 0, 255}},         // BT.601 blue
        {AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, 63, 102, 240, {255, 0, 0}},           // BT.709 red
        {AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, 173, 42, 26, {0, 255, 0}},            // BT.709 green
        {AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG, 76, 85, 255, {255, 0, 0}},          // JPEG (full range) red
        {AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG, 0, 128, 128, {0, 0, 0}},
        {AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG, 255, 128, 128, {255, 255, 255}},
    };
    mclip::RgbConverter converter;
    for (const auto& c : cases) {
        const auto frame = uniform_yuv444(c.y, c.u, c.v, c.colorspace, c.range);
        const Rgb got = pixel(converter.convert(*frame), 1, 1);
        EXPECT_NEAR(got.r, c.expected.r, 2) << "YUV " << c.y << "," << c.u << "," << c.v;
        EXPECT_NEAR(got.g, c.expected.g, 2) << "YUV " << c.y << "," << c.u << "," << c.v;
        EXPECT_NEAR(got.b, c.expected.b, 2) << "YUV " << c.y << "," << c.u << "," << c.v;
    }
}

// Worked out by hand from the BT.601 equations, for Y = 100, U = 128, V = 200:
// Y' = (100 - 16) / 219 = 0.383562, Cr = (200 - 128) / 224 = 0.321429, Cb = 0:
// R = Y' + 1.402 Cr = 0.834205 → 212.72, G = Y' - 0.714136 Cr = 0.154018 → 39.27, B = Y' → 97.81,
// so rounding (not truncation) gives 213, 39, 98.
TEST(RgbConverter, RoundsLikeTheEquations) {
    mclip::RgbConverter converter;
    const auto frame = uniform_yuv444(100, 128, 200, AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_MPEG);
    const Rgb got = pixel(converter.convert(*frame), 0, 0);
    EXPECT_EQ(got.r, 213);
    EXPECT_EQ(got.g, 39);
    EXPECT_EQ(got.b, 98);
}

// Gray is copied as it is unless the frame declares limited range (as H.264 4:0:0 does).
TEST(RgbConverter, GrayHonoursItsRange) {
    mclip::RgbConverter converter;
    const auto frame = make_av_frame(AV_PIX_FMT_GRAY8, 3, 1);
    frame->data[0][0] = 16;
    frame->data[0][1] = 126;
    frame->data[0][2] = 235;
    EXPECT_EQ(converter.convert(*frame).rgb, (std::vector<uint8_t>{16, 16, 16, 126, 126, 126, 235, 235, 235}));
    frame->color_range = AVCOL_RANGE_MPEG;  // (126 - 16) * 255 / 219 = 128.08
    EXPECT_EQ(converter.convert(*frame).rgb, (std::vector<uint8_t>{0, 0, 0, 128, 128, 128, 255, 255, 255}));
}

// A rectangle converts to exactly what the whole frame has there, and nothing outside it is written.
TEST(RgbConverter, RegionMatchesTheWholeFrame) {
    std::mt19937 rng(7);
    mclip::RgbConverter converter;
    for (AVPixelFormat format : {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12, AV_PIX_FMT_NV21, AV_PIX_FMT_YUYV422, AV_PIX_FMT_UYVY422,
                                 AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_RGB24, AV_PIX_FMT_BGRA, AV_PIX_FMT_GBRP,
                                 AV_PIX_FMT_GRAY8, AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_PAL8}) {
        const auto frame = make_av_frame(format, 37, 23);
        fill_random(*frame, rng);
        const mclip::Image whole = converter.convert(*frame);
        const PixelRect region{5, 3, 31, 20};  // odd edges: pixels without their chroma partner
        std::vector<uint8_t> rgb(whole.rgb.size(), 0xA5);
        converter.convert(*frame, region, rgb.data(), static_cast<size_t>(37) * 3);
        for (int y = 0; y < 23; ++y) {
            for (int x = 0; x < 37; ++x) {
                const bool inside = x >= region.x0 && x < region.x1 && y >= region.y0 && y < region.y1;
                for (int c = 0; c < 3; ++c) {
                    const size_t i = (static_cast<size_t>(y) * 37 + x) * 3 + c;
                    ASSERT_EQ(rgb[i], inside ? whole.rgb[i] : 0xA5) << mclip::pixel_format_name(format) << " at " << x << "," << y;
                }
            }
        }
    }
}

// The same pixels stored planar, semi-planar or packed read the same.
TEST(RgbConverter, LayoutsOfTheSamePixelsAgree) {
    std::mt19937 rng(11);
    mclip::RgbConverter converter;
    const int w = 18, h = 10;
    const auto planar = make_av_frame(AV_PIX_FMT_YUV420P, w, h);
    fill_random(*planar, rng);
    const auto nv12 = make_av_frame(AV_PIX_FMT_NV12, w, h);
    for (int y = 0; y < h; ++y) std::memcpy(nv12->data[0] + y * nv12->linesize[0], planar->data[0] + y * planar->linesize[0], w);
    for (int y = 0; y < h / 2; ++y) {
        for (int x = 0; x < w / 2; ++x) {
            nv12->data[1][y * nv12->linesize[1] + 2 * x] = planar->data[1][y * planar->linesize[1] + x];
            nv12->data[1][y * nv12->linesize[1] + 2 * x + 1] = planar->data[2][y * planar->linesize[2] + x];
        }
    }
    EXPECT_EQ(converter.convert(*planar).rgb, converter.convert(*nv12).rgb);

    const auto planar422 = make_av_frame(AV_PIX_FMT_YUV422P, w, h);
    fill_random(*planar422, rng);
    const auto yuyv = make_av_frame(AV_PIX_FMT_YUYV422, w, h);
    for (int y = 0; y < h; ++y) {
        uint8_t* out = yuyv->data[0] + y * yuyv->linesize[0];
        for (int x = 0; x < w; x += 2) {
            out[2 * x + 0] = planar422->data[0][y * planar422->linesize[0] + x];
            out[2 * x + 1] = planar422->data[1][y * planar422->linesize[1] + x / 2];
            out[2 * x + 2] = planar422->data[0][y * planar422->linesize[0] + x + 1];
            out[2 * x + 3] = planar422->data[2][y * planar422->linesize[2] + x / 2];
        }
    }
    EXPECT_EQ(converter.convert(*planar422).rgb, converter.convert(*yuyv).rgb);

    const auto rgb = make_av_frame(AV_PIX_FMT_RGB24, w, h);
    fill_random(*rgb, rng);
    const auto bgra = make_av_frame(AV_PIX_FMT_BGRA, w, h);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            const uint8_t* in = rgb->data[0] + y * rgb->linesize[0] + 3 * x;
            uint8_t* out = bgra->data[0] + y * bgra->linesize[0] + 4 * x;
            out[0] = in[2];
            out[1] = in[1];
            out[2] = in[0];
            out[3] = 17;
        }
    }
    const mclip::Image from_rgb = converter.convert(*rgb);
    EXPECT_EQ(from_rgb.rgb, converter.convert(*bgra).rgb);
    for (int y = 0; y < h; ++y) {
        ASSERT_EQ(std::memcmp(from_rgb.rgb.data() + y * w * 3, rgb->data[0] + y * rgb->linesize[0], static_cast<size_t>(w) * 3), 0);
    }
}

// 10-bit frames go through swscale; with flat chroma (no interpolation to differ on) they read
// like their 8-bit counterpart.
TEST(RgbConverter, HighBitDepthReadsLikeEightBit) {
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> luma(16, 235);
    const int w = 16, h = 8;
    const auto eight = make_av_frame(AV_PIX_FMT_YUV420P, w, h);
    const auto ten = make_av_frame(AV_PIX_FMT_YUV420P10LE, w, h);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            const int v = luma(rng);
            eight->data[0][y * eight->linesize[0] + x] = static_cast<uint8_t>(v);
            reinterpret_cast<uint16_t*>(ten->data[0] + y * ten->linesize[0])[x] = static_cast<uint16_t>(v << 2);
        }
    }
    const int chroma[2] = {100, 170};
    for (int p = 1; p <= 2; ++p) {
        for (int y = 0; y < h / 2; ++y) {
            for (int x = 0; x < w / 2; ++x) {
                eight->data[p][y * eight->linesize[p] + x] = static_cast<uint8_t>(chroma[p - 1]);
                reinterpret_cast<uint16_t*>(ten->data[p] + y * ten->linesize[p])[x] = static_cast<uint16_t>(chroma[p - 1] << 2);
            }
        }
    }
    mclip::RgbConverter converter;
    const auto a = converter.convert(*eight).rgb;
    const auto b = converter.convert(*ten).rgb;
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2) << "byte " << i;
}

TEST(RgbConverter, RefusesHardwareFrames) {
    const auto frame = mclip::allocate_av_frame();
    frame->format = AV_PIX_FMT_VAAPI;
    frame->width = 64;
    frame->height = 48;
    mclip::RgbConverter converter;
    try {
        converter.convert(*frame);
        FAIL() << "a hardware surface was accepted";
    } catch (const mclip::Error& e) {
        EXPECT_EQ(e.code(), mclip::ErrorCode::unsupported);
        EXPECT_NE(std::string(e.what()).find("vaapi"), std::string::npos) << e.what();
    }
}

// The frame path gives the very tensor the image path gives on the frame's RGB pixels, for
// shrinking, enlarging and cropping-only sizes, after other frames have used the same buffers.
TEST(FrameTensorizer, MatchesThePreprocessorOnTheFramesPixels) {
    std::mt19937 rng(5);
    mclip::PreprocessParams params;
    params.size = 64;
    mclip::FrameTensorizer tensorizer(params);
    mclip::Preprocessor preprocessor(params);
    mclip::RgbConverter converter;
    const size_t elements = static_cast<size_t>(3) * 64 * 64;
    struct Shape {
        AVPixelFormat format;
        int width, height;
    };
    for (const Shape s : {Shape{AV_PIX_FMT_YUV420P, 320, 180}, Shape{AV_PIX_FMT_YUV420P, 320, 180}, Shape{AV_PIX_FMT_NV12, 180, 320},
                          Shape{AV_PIX_FMT_RGB24, 50, 40}, Shape{AV_PIX_FMT_YUV444P, 64, 64}, Shape{AV_PIX_FMT_YUV420P, 65, 90},
                          Shape{AV_PIX_FMT_RGB24, 64, 200}}) {
        const auto frame = make_av_frame(s.format, s.width, s.height);
        fill_random(*frame, rng);
        std::vector<float> from_frame(elements), from_image(elements);
        tensorizer.run(*frame, from_frame.data());
        preprocessor.run(converter.convert(*frame), from_image.data());
        ASSERT_EQ(from_frame, from_image) << mclip::pixel_format_name(s.format) << " " << s.width << "x" << s.height;
    }
}

// A 16:9 frame keeps only its middle square, so only that part is converted.
TEST(FrameTensorizer, ConvertsOnlyWhatTheCropReads) {
    mclip::PreprocessParams params;
    params.size = 256;
    const mclip::FrameTensorizer tensorizer(params);
    const PixelRect r = tensorizer.footprint(1280, 720);
    EXPECT_EQ(r.y0, 0);
    EXPECT_EQ(r.y1, 720);
    // The crop covers resized columns [99, 355) of 455, i.e. about [278, 998] of 1280.
    EXPECT_GT(r.x0, 260);
    EXPECT_LT(r.x1, 1020);
    EXPECT_LT(r.x1 - r.x0, 760);
}

TEST(Overlay, DrawsOnlyInsideItsBox) {
    const auto frame = make_av_frame(AV_PIX_FMT_YUV420P, 320, 240);
    for (int p = 0; p < 3; ++p) {
        for (int y = 0; y < mclip::testing::plane_rows(*frame, p); ++y) std::memset(frame->data[p] + y * frame->linesize[p], 128, frame->linesize[p]);
    }
    mclip::OverlayContent content;
    content.headline = "forklift 87%";
    content.confidence = 0.87f;
    content.details = {"forklift 87%", "person 9%"};
    content.status = "12.5 fps  48 ms";
    const PixelRect box = mclip::draw_overlay(*frame, content);
    EXPECT_GE(box.x0, 0);
    EXPECT_GE(box.y0, 0);
    EXPECT_LT(box.x1, 250);
    EXPECT_LT(box.y1, 120);
    int changed = 0, bright = 0;
    for (int y = 0; y < 240; ++y) {
        for (int x = 0; x < 320; ++x) {
            const uint8_t v = frame->data[0][y * frame->linesize[0] + x];
            const bool inside = x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1;
            if (!inside) {
                ASSERT_EQ(v, 128) << "luma changed outside the box at " << x << "," << y;
            }
            if (inside && v != 128) ++changed;
            if (inside && v >= 200) ++bright;
        }
    }
    const int area = (box.x1 - box.x0) * (box.y1 - box.y0);
    EXPECT_GT(changed, area * 9 / 10);  // the darkened background
    EXPECT_GT(bright, 100);             // the text
    for (int y = 0; y < 120; ++y) {
        for (int x = 0; x < 160; ++x) {
            const bool covered = 2 * x + 1 >= box.x0 && 2 * x < box.x1 && 2 * y + 1 >= box.y0 && 2 * y < box.y1;
            if (!covered) {
                ASSERT_EQ(frame->data[1][y * frame->linesize[1] + x], 128);
            }
        }
    }
}

TEST(Overlay, PrintsNonAsciiCharactersAsQuestionMarks) {
    EXPECT_EQ(mclip::printable_ascii("caf\xC3\xA9 \xE2\x82\xAC" "5"), "caf? ?5");
    EXPECT_EQ(mclip::printable_ascii("tab\there"), "tab?here");
}

TEST(BitmapFont, EveryGlyphIsInkedAndDistinct) {
    std::set<std::string> seen;
    for (int c = 33; c <= 126; ++c) {
        std::string bits;
        for (int y = 0; y < mclip::kGlyphHeight; ++y) {
            for (int x = 0; x < mclip::kGlyphWidth; ++x) bits += mclip::glyph_pixel(static_cast<char>(c), x, y) ? '#' : '.';
        }
        EXPECT_NE(bits.find('#'), std::string::npos) << "glyph '" << static_cast<char>(c) << "' is empty";
        EXPECT_TRUE(seen.insert(bits).second) << "glyph '" << static_cast<char>(c) << "' repeats another";
    }
}

}  // namespace
