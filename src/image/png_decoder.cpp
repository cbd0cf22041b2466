// PNG through libpng, with the pixels converted to RGB the way PIL's PngImagePlugin modes and
// convert("RGB") do it:
//   gray 1/2/4 bit    L (values scaled to 0..255: x255, x85, x17), replicated
//   gray 8 bit        L, replicated
//   gray 16 bit       I;16, then convert clips: v > 255 becomes 255 (PIL keeps no high byte here)
//   RGB 16 bit        RGB;16B: the high byte of each sample
//   palette           the PLTE color of each index (tRNS ignored: PIL does not composite)
//   gray+alpha        gray replicated (16 bit: the high byte), alpha dropped
//   RGBA              alpha dropped (16 bit: high bytes)
// Gamma, sRGB and ICC chunks are ignored, as PIL ignores them.
//
// libpng reports errors through a callback that must not return; ours longjmps back to
// decode_into(), which holds only trivially destructible locals for that reason.
#include <csetjmp>
#include <cstring>
#include <memory>

#include <png.h>

#include "common/error.h"
#include "image/decoders.h"

namespace mclip::image_detail {

namespace {

enum class Stage { header, pixels, trailer };

struct Session {
    png_structp png = nullptr;
    png_infop info = nullptr;
    std::span<const uint8_t> bytes;
    size_t position = 0;
    bool truncated = false;
    Stage stage = Stage::header;
    char message[256] = {};
    bool want_exif = false;
    // Undecoded samples: one row, or every row when interlaced. Not zero-filled, so that memory is
    // occupied only where libpng writes.
    std::unique_ptr<uint8_t[]> raw;
    std::vector<png_bytep> row_pointers;
    DecodedImage result;
    ~Session() { png_destroy_read_struct(&png, &info, nullptr); }
};

void on_error(png_structp png, png_const_charp message) {
    auto* s = static_cast<Session*>(png_get_error_ptr(png));
    std::snprintf(s->message, sizeof(s->message), "%s", message);
    png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void read_bytes(png_structp png, png_bytep out, size_t length) {
    auto* s = static_cast<Session*>(png_get_io_ptr(png));
    if (s->bytes.size() - s->position < length) {
        s->truncated = true;
        png_error(png, "unexpected end of data");
    }
    std::memcpy(out, s->bytes.data() + s->position, length);
    s->position += length;
}

struct Layout {
    int color_type;
    int bit_depth;   // after png_set_packing: 8 or 16
    int source_depth;  // as stored: 1, 2, 4, 8 or 16
    int width;
    uint8_t palette[256 * 3];  // entries past the PLTE's length stay black
};

uint8_t high_byte(const uint8_t* sample16) { return sample16[0]; }  // PNG samples are big-endian

void convert_row(const Layout& layout, const uint8_t* in, uint8_t* out) {
    const int w = layout.width;
    const bool wide = layout.bit_depth == 16;
    switch (layout.color_type) {
        case PNG_COLOR_TYPE_GRAY:
            if (wide) {
                for (int x = 0; x < w; ++x) {
                    const uint8_t* v = in + 2 * x;
                    out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v[0] != 0 ? 255 : v[1];
                }
            } else {
                const int scale = 255 / ((1 << layout.source_depth) - 1);  // 255, 85, 17 or 1
                for (int x = 0; x < w; ++x) {
                    out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = static_cast<uint8_t>(in[x] * scale);
                }
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: {
            const int step = wide ? 4 : 2;
            for (int x = 0; x < w; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = high_byte(in + step * x);
            break;
        }
        case PNG_COLOR_TYPE_PALETTE:
            for (int x = 0; x < w; ++x) std::memcpy(out + 3 * x, layout.palette + 3 * in[x], 3);
            break;
        case PNG_COLOR_TYPE_RGB:
            if (wide) {
                for (int i = 0; i < 3 * w; ++i) out[i] = high_byte(in + 2 * i);
            } else {
                std::memcpy(out, in, static_cast<size_t>(w) * 3);
            }
            break;
        default: {  // PNG_COLOR_TYPE_RGB_ALPHA
            const int sample = wide ? 2 : 1;
            for (int x = 0; x < w; ++x) {
                for (int c = 0; c < 3; ++c) out[3 * x + c] = high_byte(in + sample * (4 * x + c));
            }
        }
    }
}

void take_exif(Session& s) {
    png_uint_32 length = 0;
    png_bytep exif = nullptr;
    if (png_get_eXIf_1(s.png, s.info, &length, &exif) != 0 && exif && length > 0) {
        s.result.exif.assign(exif, exif + length);
    }
}

// Runs libpng; returns false after a libpng error (message in s.message).
bool decode_into(Session& s, Layout& layout, const std::string& name, const DecodeOptions& options) {
    if (setjmp(png_jmpbuf(s.png))) return s.stage == Stage::trailer;  // damage after the pixels is ignored, as PIL does
    png_set_read_fn(s.png, &s, read_bytes);
    png_read_info(s.png, s.info);
    png_uint_32 width = 0, height = 0;
    int interlace = 0;
    png_get_IHDR(s.png, s.info, &width, &height, &layout.source_depth, &layout.color_type, &interlace, nullptr, nullptr);
    check_pixel_limit(width, height, name, options);
    layout.width = static_cast<int>(width);
    if (layout.color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp palette = nullptr;
        int entries = 0;
        if (png_get_PLTE(s.png, s.info, &palette, &entries) != 0) {
            for (int i = 0; i < entries && i < 256; ++i) {
                layout.palette[3 * i + 0] = palette[i].red;
                layout.palette[3 * i + 1] = palette[i].green;
                layout.palette[3 * i + 2] = palette[i].blue;
            }
        }
    }
    if (layout.source_depth < 8) png_set_packing(s.png);  // one byte per sample, value unscaled
    layout.bit_depth = layout.source_depth < 8 ? 8 : layout.source_depth;
    const int passes = png_set_interlace_handling(s.png);
    png_read_update_info(s.png, s.info);
    if (s.want_exif) take_exif(s);

    s.stage = Stage::pixels;
    Image& image = s.result.image;
    image.width = static_cast<int>(width);
    image.height = static_cast<int>(height);
    const size_t out_stride = static_cast<size_t>(width) * 3;
    // Reserved, then grown row by row (see the JPEG decoder): a truncated file claiming a huge
    // size occupies only the rows its data reached.
    image.rgb.reserve(out_stride * height);
    const size_t row_bytes = png_get_rowbytes(s.png, s.info);
    const bool direct = layout.color_type == PNG_COLOR_TYPE_RGB && layout.bit_depth == 8;
    if (passes > 1) {
        // Adam7 fills every row in each pass: keep the whole raw image, convert at the end.
        s.raw = std::make_unique_for_overwrite<uint8_t[]>(row_bytes * height);
        s.row_pointers.resize(height);
        for (png_uint_32 y = 0; y < height; ++y) s.row_pointers[y] = s.raw.get() + row_bytes * y;
        png_read_image(s.png, s.row_pointers.data());
        image.rgb.resize(out_stride * height);
        for (png_uint_32 y = 0; y < height; ++y) convert_row(layout, s.row_pointers[y], image.rgb.data() + out_stride * y);
    } else {
        if (!direct) s.raw = std::make_unique_for_overwrite<uint8_t[]>(row_bytes);
        for (png_uint_32 y = 0; y < height; ++y) {
            image.rgb.resize(out_stride * (y + 1));
            uint8_t* out = image.rgb.data() + out_stride * y;
            png_read_row(s.png, direct ? out : s.raw.get(), nullptr);
            if (!direct) convert_row(layout, s.raw.get(), out);
        }
    }

    // EXIF may also follow the image data.
    s.stage = Stage::trailer;
    if (s.want_exif && s.result.exif.empty()) {
        png_read_end(s.png, s.info);
        take_exif(s);
    }
    return true;
}

}  // namespace

DecodedImage decode_png(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options) {
    Session s;
    s.bytes = bytes;
    s.want_exif = options.apply_exif_orientation;
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
    if (s.png) s.info = png_create_info_struct(s.png);
    if (!s.png || !s.info) throw Error(ErrorCode::internal, name + ": cannot initialize libpng");
    Layout layout{};
    if (decode_into(s, layout, name, options)) return std::move(s.result);
    if (s.truncated) {
        throw Error(ErrorCode::invalid_input, name + ": truncated PNG (the data ends before the image is complete)");
    }
    throw Error(ErrorCode::invalid_input, name + ": corrupt or unsupported PNG: " + s.message);
}

}  // namespace mclip::image_detail
