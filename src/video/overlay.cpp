#include "video/overlay.h"

#include <algorithm>
#include <cmath>

extern "C" {
#include <libavutil/frame.h>
}

#include "common/error.h"
#include "video/bitmap_font.h"

namespace mclip {

namespace {

struct YuvColor {
    uint8_t y, u, v;
};

// BT.601 limited range, the encoder's and the window's default for yuv420p.
YuvColor yuv_from_rgb(int r, int g, int b) {
    const double y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    const double u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    const double v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    const auto byte = [](double x) { return static_cast<uint8_t>(std::clamp(std::lround(x), 0L, 255L)); };
    return {byte(y), byte(u), byte(v)};
}

class Canvas {
public:
    explicit Canvas(AVFrame& frame) : frame_(frame) {}

    PixelRect clip(PixelRect r) const {
        r.x0 = std::clamp(r.x0, 0, frame_.width);
        r.x1 = std::clamp(r.x1, r.x0, frame_.width);
        r.y0 = std::clamp(r.y0, 0, frame_.height);
        r.y1 = std::clamp(r.y1, r.y0, frame_.height);
        return r;
    }

    // Scales luma toward black and chroma toward grey by `keep` (0..1).
    void darken(PixelRect r, float keep) {
        r = clip(r);
        const int scale = static_cast<int>(keep * 256.0f);
        for (int y = r.y0; y < r.y1; ++y) {
            uint8_t* row = frame_.data[0] + static_cast<ptrdiff_t>(y) * frame_.linesize[0];
            for (int x = r.x0; x < r.x1; ++x) row[x] = static_cast<uint8_t>(16 + (std::max(row[x] - 16, 0) * scale >> 8));
        }
        for_chroma(r, [&](uint8_t& u, uint8_t& v) {
            u = static_cast<uint8_t>(128 + ((u - 128) * scale >> 8));
            v = static_cast<uint8_t>(128 + ((v - 128) * scale >> 8));
        });
    }

    void fill(PixelRect r, YuvColor color) {
        r = clip(r);
        for (int y = r.y0; y < r.y1; ++y) {
            std::fill_n(frame_.data[0] + static_cast<ptrdiff_t>(y) * frame_.linesize[0] + r.x0, r.x1 - r.x0, color.y);
        }
        for_chroma(r, [&](uint8_t& u, uint8_t& v) {
            u = color.u;
            v = color.v;
        });
    }

    // Text in luma only: the box under it is already near grey, so chroma needs no change.
    void text(int left, int top, int scale, const std::string& line, uint8_t luma, int right_limit) {
        for (size_t i = 0; i < line.size(); ++i) {
            const int cell_left = left + static_cast<int>(i) * (kGlyphWidth + 1) * scale;
            if (cell_left + kGlyphWidth * scale > right_limit) break;
            for (int gy = 0; gy < kGlyphHeight; ++gy) {
                for (int gx = 0; gx < kGlyphWidth; ++gx) {
                    if (!glyph_pixel(line[i], gx, gy)) continue;
                    const PixelRect dot = clip({cell_left + gx * scale, top + gy * scale, cell_left + (gx + 1) * scale,
                                                top + (gy + 1) * scale});
                    for (int y = dot.y0; y < dot.y1; ++y) {
                        std::fill_n(frame_.data[0] + static_cast<ptrdiff_t>(y) * frame_.linesize[0] + dot.x0, dot.x1 - dot.x0, luma);
                    }
                }
            }
        }
    }

private:
    // The chroma samples (2x2 pixels each) that cover any pixel of r.
    template <class F>
    void for_chroma(const PixelRect& r, F&& f) {
        for (int y = r.y0 / 2; y < (r.y1 + 1) / 2; ++y) {
            uint8_t* u = frame_.data[1] + static_cast<ptrdiff_t>(y) * frame_.linesize[1];
            uint8_t* v = frame_.data[2] + static_cast<ptrdiff_t>(y) * frame_.linesize[2];
            for (int x = r.x0 / 2; x < (r.x1 + 1) / 2; ++x) f(u[x], v[x]);
        }
    }

    AVFrame& frame_;
};

int text_width(const std::string& line, int scale) {
    return line.empty() ? 0 : (static_cast<int>(line.size()) * (kGlyphWidth + 1) - 1) * scale;
}

}  // namespace

std::string printable_ascii(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte >= 0x80 && byte < 0xC0) continue;  // a continuation byte: its character is already out
        out += byte >= 32 && byte <= 126 ? static_cast<char>(byte) : '?';
    }
    return out;
}

PixelRect draw_overlay(AVFrame& frame, const OverlayContent& content) {
    if (frame.format != AV_PIX_FMT_YUV420P) throw Error(ErrorCode::internal, "overlay needs a yuv420p frame");
    Canvas canvas(frame);
    const int unit = std::max(1, std::min(frame.width, frame.height) / 240);
    const int margin = 4 * unit, padding = 3 * unit, gap = 2 * unit;
    const int big = 2 * unit, line_height = (kGlyphHeight + 2) * unit;

    const std::string headline = printable_ascii(content.headline);
    std::vector<std::string> lines;
    for (const auto& d : content.details) lines.push_back(printable_ascii(d));
    if (!content.status.empty()) lines.push_back(printable_ascii(content.status));

    int inner_width = std::max(text_width(headline, big), 60 * unit);
    for (const auto& l : lines) inner_width = std::max(inner_width, text_width(l, unit));
    const int bar_height = 3 * unit;
    const int inner_height = kGlyphHeight * big + gap + bar_height + gap + static_cast<int>(lines.size()) * line_height;
    const PixelRect box = canvas.clip({margin, margin, std::min(margin + inner_width + 2 * padding, frame.width - margin),
                                       margin + inner_height + 2 * padding});
    canvas.darken(box, 0.35f);

    const int left = box.x0 + padding, right = box.x1 - padding;
    int top = box.y0 + padding;
    canvas.text(left, top, big, headline, content.unknown ? 170 : 235, right);
    top += kGlyphHeight * big + gap;
    const int bar_width = right - left;
    const int filled = static_cast<int>(std::lround(std::clamp(content.confidence, 0.0f, 1.0f) * bar_width));
    canvas.fill({left, top, right, top + bar_height}, yuv_from_rgb(60, 60, 60));
    canvas.fill({left, top, left + filled, top + bar_height}, content.unknown ? yuv_from_rgb(150, 150, 150) : yuv_from_rgb(40, 200, 60));
    top += bar_height + gap;
    for (const auto& l : lines) {
        canvas.text(left, top, unit, l, 220, right);
        top += line_height;
    }
    return box;
}

}  // namespace mclip
