// Both libraries report errors through callbacks that must not return; they longjmp back into
// small functions that hold only trivially destructible locals.
#include "mclip/image.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <jpeglib.h>
#include <png.h>

#include "common/error.h"

namespace mclip {

namespace {

void check_image(const Image& image) {
    if (image.width < 1 || image.height < 1 || image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
        throw Error(ErrorCode::invalid_argument, "cannot encode an image of " + std::to_string(image.width) + "x" +
                                                     std::to_string(image.height) + " holding " +
                                                     std::to_string(image.rgb.size()) + " bytes");
    }
}

struct JpegErrors {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr cinfo) {
    auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, errors->message);
    std::longjmp(errors->jump, 1);
}

struct JpegSession {
    jpeg_compress_struct cinfo{};
    JpegErrors errors{};
    unsigned char* buffer = nullptr;  // allocated by libjpeg's memory destination
    unsigned long size = 0;
    ~JpegSession() {
        jpeg_destroy_compress(&cinfo);
        std::free(buffer);
    }
};

bool compress(JpegSession& s, const Image& image, const JpegEncodeOptions& options) {
    if (setjmp(s.errors.jump)) return false;
    jpeg_create_compress(&s.cinfo);
    jpeg_mem_dest(&s.cinfo, &s.buffer, &s.size);
    s.cinfo.image_width = static_cast<JDIMENSION>(image.width);
    s.cinfo.image_height = static_cast<JDIMENSION>(image.height);
    s.cinfo.input_components = 3;
    s.cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&s.cinfo);
    jpeg_set_quality(&s.cinfo, options.quality, TRUE);
    const int factor = options.subsample_chroma ? 2 : 1;
    s.cinfo.comp_info[0].h_samp_factor = factor;
    s.cinfo.comp_info[0].v_samp_factor = factor;
    jpeg_start_compress(&s.cinfo, TRUE);
    while (s.cinfo.next_scanline < s.cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(image.rgb.data() + static_cast<size_t>(s.cinfo.next_scanline) * image.width * 3);
        jpeg_write_scanlines(&s.cinfo, &row, 1);
    }
    jpeg_finish_compress(&s.cinfo);
    return true;
}

struct PngSession {
    png_structp png = nullptr;
    png_infop info = nullptr;
    std::vector<uint8_t> out;
    char message[256] = {};
    ~PngSession() { png_destroy_write_struct(&png, &info); }
};

void on_png_error(png_structp png, png_const_charp message) {
    auto* s = static_cast<PngSession*>(png_get_error_ptr(png));
    std::snprintf(s->message, sizeof(s->message), "%s", message);
    png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void append_bytes(png_structp png, png_bytep data, size_t length) {
    auto* s = static_cast<PngSession*>(png_get_io_ptr(png));
    s->out.insert(s->out.end(), data, data + length);
}

void flush_nothing(png_structp) {}

bool write_png(PngSession& s, const Image& image) {
    if (setjmp(png_jmpbuf(s.png))) return false;
    png_set_write_fn(s.png, &s, append_bytes, flush_nothing);
    png_set_IHDR(s.png, s.info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(s.png, s.info);
    for (int y = 0; y < image.height; ++y) {
        png_write_row(s.png, image.rgb.data() + static_cast<size_t>(y) * image.width * 3);
    }
    png_write_end(s.png, nullptr);
    return true;
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const Image& image, const JpegEncodeOptions& options) {
    check_image(image);
    if (options.quality < 1 || options.quality > 100) {
        throw Error(ErrorCode::invalid_argument, "JPEG quality must be 1..100, got " + std::to_string(options.quality));
    }
    JpegSession s;
    s.cinfo.err = jpeg_std_error(&s.errors.pub);
    s.errors.pub.error_exit = on_jpeg_error;
    if (!compress(s, image, options)) {
        throw Error(ErrorCode::internal, std::string("JPEG encoding failed: ") + s.errors.message);
    }
    return std::vector<uint8_t>(s.buffer, s.buffer + s.size);
}

std::vector<uint8_t> encode_png(const Image& image) {
    check_image(image);
    PngSession s;
    s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
    if (s.png) s.info = png_create_info_struct(s.png);
    if (!s.png || !s.info) throw Error(ErrorCode::internal, "cannot initialize libpng");
    if (!write_png(s, image)) throw Error(ErrorCode::internal, std::string("PNG encoding failed: ") + s.message);
    return std::move(s.out);
}

}  // namespace mclip
