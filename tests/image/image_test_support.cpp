#include "image/image_test_support.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>
#include <webp/mux.h>

namespace mclip::testing {

Image synthetic_image(int width, int height, uint32_t seed) {
    Image image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> noise(-12, 12);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            const bool edge = ((x / 7) + (y / 5)) % 3 == 0;  // hard edges
            const int base[3] = {255 * x / std::max(width - 1, 1), 255 * y / std::max(height - 1, 1),
                                 (x * 3 + y * 5) % 256};
            for (int c = 0; c < 3; ++c) {
                const int v = base[c] + noise(rng) + (edge ? 60 : 0);
                image.rgb[(static_cast<size_t>(y) * width + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
            }
        }
    }
    return image;
}

std::vector<uint8_t> exif_block(int orientation, bool big_endian, bool jpeg_prefix) {
    std::vector<uint8_t> out;
    if (jpeg_prefix) out = {'E', 'x', 'i', 'f', 0, 0};
    auto u16 = [&](uint16_t v) {
        if (big_endian) {
            out.push_back(static_cast<uint8_t>(v >> 8));
            out.push_back(static_cast<uint8_t>(v));
        } else {
            out.push_back(static_cast<uint8_t>(v));
            out.push_back(static_cast<uint8_t>(v >> 8));
        }
    };
    auto u32 = [&](uint32_t v) {
        if (big_endian) {
            u16(static_cast<uint16_t>(v >> 16));
            u16(static_cast<uint16_t>(v));
        } else {
            u16(static_cast<uint16_t>(v));
            u16(static_cast<uint16_t>(v >> 16));
        }
    };
    out.push_back(big_endian ? 'M' : 'I');
    out.push_back(big_endian ? 'M' : 'I');
    u16(42);
    u32(8);  // IFD0 right after the header
    u16(2);  // two entries: an unrelated tag first, then Orientation
    u16(0x010F);  // Make, ASCII, 4 bytes inline: "Cam\0"
    u16(2);
    u32(4);
    out.insert(out.end(), {'C', 'a', 'm', 0});
    u16(0x0112);  // Orientation, SHORT, 1 value (left-justified in the 4-byte field)
    u16(3);
    u32(1);
    u16(static_cast<uint16_t>(orientation));
    u16(0);
    u32(0);  // no next IFD
    return out;
}

namespace {

struct PngWriter {
    png_structp png = nullptr;
    png_infop info = nullptr;
    std::vector<uint8_t> out;
    ~PngWriter() { png_destroy_write_struct(&png, &info); }
};

void png_fail(png_structp png, png_const_charp) { png_longjmp(png, 1); }
void png_ignore(png_structp, png_const_charp) {}
void png_append(png_structp png, png_bytep data, size_t length) {
    auto* w = static_cast<PngWriter*>(png_get_io_ptr(png));
    w->out.insert(w->out.end(), data, data + length);
}
void png_flush_nothing(png_structp) {}

int png_channels(int color_type) {
    switch (color_type) {
        case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
        case PNG_COLOR_TYPE_RGB: return 3;
        case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
        default: return 1;
    }
}

// Packs sample values into PNG row bytes: sub-byte depths MSB first, 16 bit big-endian.
std::vector<std::vector<uint8_t>> png_rows(const PngSpec& spec) {
    const int per_row = spec.width * png_channels(spec.color_type);
    std::vector<std::vector<uint8_t>> rows(spec.height);
    for (int y = 0; y < spec.height; ++y) {
        auto& row = rows[y];
        row.assign((static_cast<size_t>(per_row) * spec.bit_depth + 7) / 8, 0);
        for (int i = 0; i < per_row; ++i) {
            const uint16_t v = spec.samples.at(static_cast<size_t>(y) * per_row + i);
            if (spec.bit_depth == 16) {
                row[2 * i] = static_cast<uint8_t>(v >> 8);
                row[2 * i + 1] = static_cast<uint8_t>(v);
            } else if (spec.bit_depth == 8) {
                row[i] = static_cast<uint8_t>(v);
            } else {
                const int bit = i * spec.bit_depth;
                row[bit / 8] |= static_cast<uint8_t>(v << (8 - spec.bit_depth - bit % 8));
            }
        }
    }
    return rows;
}

bool write_png(PngWriter& w, const PngSpec& spec, std::vector<std::vector<uint8_t>>& rows) {
    if (setjmp(png_jmpbuf(w.png))) return false;
    png_set_write_fn(w.png, &w, png_append, png_flush_nothing);
    png_set_IHDR(w.png, w.info, spec.width, spec.height, spec.bit_depth, spec.color_type,
                 spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    std::vector<png_color> palette;
    for (const auto& p : spec.palette) palette.push_back({p[0], p[1], p[2]});
    if (!palette.empty()) png_set_PLTE(w.png, w.info, palette.data(), static_cast<int>(palette.size()));
    if (!spec.transparency.empty()) {
        png_set_tRNS(w.png, w.info, spec.transparency.data(), static_cast<int>(spec.transparency.size()), nullptr);
    }
    if (!spec.exif.empty()) {
        png_set_eXIf_1(w.png, w.info, static_cast<png_uint_32>(spec.exif.size()), const_cast<png_bytep>(spec.exif.data()));
    }
    std::vector<png_bytep> pointers;
    for (auto& row : rows) pointers.push_back(row.data());
    png_set_rows(w.png, w.info, pointers.data());
    png_write_png(w.png, w.info, PNG_TRANSFORM_IDENTITY, nullptr);
    return true;
}

struct JpegErrors {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
};

void jpeg_fail(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<JpegErrors*>(cinfo->err)->jump, 1); }

struct JpegWriter {
    jpeg_compress_struct cinfo{};
    JpegErrors errors{};
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    ~JpegWriter() {
        jpeg_destroy_compress(&cinfo);
        std::free(buffer);
    }
};

bool write_jpeg(JpegWriter& w, const JpegSpec& spec) {
    if (setjmp(w.errors.jump)) return false;
    jpeg_create_compress(&w.cinfo);
    jpeg_mem_dest(&w.cinfo, &w.buffer, &w.size);
    w.cinfo.image_width = spec.width;
    w.cinfo.image_height = spec.height;
    w.cinfo.input_components = spec.components;
    w.cinfo.in_color_space = spec.components == 1 ? JCS_GRAYSCALE : (spec.components == 3 ? JCS_RGB : JCS_CMYK);
    jpeg_set_defaults(&w.cinfo);
    if (spec.components == 4) jpeg_set_colorspace(&w.cinfo, spec.ycck ? JCS_YCCK : JCS_CMYK);
    jpeg_set_quality(&w.cinfo, spec.quality, TRUE);
    const int factor = spec.components == 3 && spec.subsample ? 2 : 1;
    w.cinfo.comp_info[0].h_samp_factor = factor;
    w.cinfo.comp_info[0].v_samp_factor = factor;
    if (spec.progressive) jpeg_simple_progression(&w.cinfo);
    jpeg_start_compress(&w.cinfo, TRUE);
    for (const auto& [marker, payload] : spec.markers) {
        jpeg_write_marker(&w.cinfo, marker, payload.data(), static_cast<unsigned>(payload.size()));
    }
    while (w.cinfo.next_scanline < w.cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(spec.samples.data() +
                                            static_cast<size_t>(w.cinfo.next_scanline) * spec.width * spec.components);
        jpeg_write_scanlines(&w.cinfo, &row, 1);
    }
    jpeg_finish_compress(&w.cinfo);
    return true;
}

struct JpegReader {
    jpeg_decompress_struct cinfo{};
    JpegErrors errors{};
    ~JpegReader() { jpeg_destroy_decompress(&cinfo); }
};

bool read_jpeg(JpegReader& r, const std::vector<uint8_t>& jpeg, int components, std::vector<uint8_t>& out) {
    if (setjmp(r.errors.jump)) return false;
    jpeg_create_decompress(&r.cinfo);
    jpeg_mem_src(&r.cinfo, jpeg.data(), jpeg.size());
    jpeg_read_header(&r.cinfo, TRUE);
    r.cinfo.out_color_space = components == 1 ? JCS_GRAYSCALE : (components == 3 ? JCS_RGB : JCS_CMYK);
    jpeg_start_decompress(&r.cinfo);
    const size_t stride = static_cast<size_t>(r.cinfo.output_width) * r.cinfo.output_components;
    out.resize(stride * r.cinfo.output_height);
    while (r.cinfo.output_scanline < r.cinfo.output_height) {
        JSAMPROW row = out.data() + stride * r.cinfo.output_scanline;
        jpeg_read_scanlines(&r.cinfo, &row, 1);
    }
    jpeg_finish_decompress(&r.cinfo);
    return true;
}

std::vector<uint8_t> webp_lossless(int width, int height, const uint8_t* rgba) {
    WebPConfig config;
    WebPPicture picture;
    if (!WebPConfigInit(&config) || !WebPPictureInit(&picture)) throw std::runtime_error("libwebp init failed");
    config.lossless = 1;
    config.exact = 1;  // keep the color of transparent pixels
    picture.use_argb = 1;
    picture.width = width;
    picture.height = height;
    WebPMemoryWriter writer;
    WebPMemoryWriterInit(&writer);
    picture.writer = WebPMemoryWrite;
    picture.custom_ptr = &writer;
    const bool ok = WebPPictureImportRGBA(&picture, rgba, width * 4) && WebPEncode(&config, &picture);
    WebPPictureFree(&picture);
    std::vector<uint8_t> out(writer.mem, writer.mem + writer.size);
    WebPMemoryWriterClear(&writer);
    if (!ok) throw std::runtime_error("WebP encoding failed");
    return out;
}

std::vector<uint8_t> rgb_to_rgba(const Image& rgb) {
    std::vector<uint8_t> rgba;
    for (size_t i = 0; i < rgb.rgb.size(); i += 3) rgba.insert(rgba.end(), {rgb.rgb[i], rgb.rgb[i + 1], rgb.rgb[i + 2], 255});
    return rgba;
}

}  // namespace

std::vector<uint8_t> make_png(const PngSpec& spec) {
    PngWriter w;
    w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_fail, png_ignore);
    w.info = png_create_info_struct(w.png);
    auto rows = png_rows(spec);
    if (!write_png(w, spec, rows)) throw std::runtime_error("PNG encoding failed");
    return std::move(w.out);
}

std::vector<uint8_t> make_jpeg(const JpegSpec& spec) {
    JpegWriter w;
    w.cinfo.err = jpeg_std_error(&w.errors.pub);
    w.errors.pub.error_exit = jpeg_fail;
    if (!write_jpeg(w, spec)) throw std::runtime_error("JPEG encoding failed");
    return std::vector<uint8_t>(w.buffer, w.buffer + w.size);
}

std::vector<uint8_t> libjpeg_decode(const std::vector<uint8_t>& jpeg, int components) {
    JpegReader r;
    r.cinfo.err = jpeg_std_error(&r.errors.pub);
    r.errors.pub.error_exit = jpeg_fail;
    std::vector<uint8_t> out;
    if (!read_jpeg(r, jpeg, components, out)) throw std::runtime_error("JPEG decoding failed");
    return out;
}

std::vector<uint8_t> make_webp_lossless(const Image& rgb) {
    const auto rgba = rgb_to_rgba(rgb);
    return webp_lossless(rgb.width, rgb.height, rgba.data());
}

std::vector<uint8_t> make_webp_lossless_rgba(int width, int height, const std::vector<uint8_t>& rgba) {
    return webp_lossless(width, height, rgba.data());
}

std::vector<uint8_t> make_webp_lossy(const Image& rgb, float quality) {
    uint8_t* data = nullptr;
    const size_t size = WebPEncodeRGB(rgb.rgb.data(), rgb.width, rgb.height, rgb.width * 3, quality, &data);
    if (size == 0) throw std::runtime_error("WebP encoding failed");
    std::vector<uint8_t> out(data, data + size);
    WebPFree(data);
    return out;
}

std::vector<uint8_t> make_animated_webp(int width, int height, const std::vector<uint8_t>& frame1_rgba,
                                        const std::vector<uint8_t>& frame2_rgba) {
    WebPAnimEncoderOptions options;
    WebPConfig config;
    if (!WebPAnimEncoderOptionsInit(&options) || !WebPConfigInit(&config)) throw std::runtime_error("libwebp init failed");
    config.lossless = 1;
    config.exact = 1;
    WebPAnimEncoder* encoder = WebPAnimEncoderNew(width, height, &options);
    WebPData assembled;
    WebPDataInit(&assembled);
    bool ok = encoder != nullptr;
    int timestamp = 0;
    for (const auto* frame : {&frame1_rgba, &frame2_rgba}) {
        WebPPicture picture;
        WebPPictureInit(&picture);
        picture.use_argb = 1;
        picture.width = width;
        picture.height = height;
        ok = ok && WebPPictureImportRGBA(&picture, frame->data(), width * 4) &&
             WebPAnimEncoderAdd(encoder, &picture, timestamp, &config);
        WebPPictureFree(&picture);
        timestamp += 100;
    }
    ok = ok && WebPAnimEncoderAdd(encoder, nullptr, timestamp, nullptr) && WebPAnimEncoderAssemble(encoder, &assembled);
    std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
    WebPDataClear(&assembled);
    WebPAnimEncoderDelete(encoder);
    if (!ok) throw std::runtime_error("animated WebP encoding failed");
    return out;
}

std::vector<uint8_t> add_webp_exif(const std::vector<uint8_t>& webp, const std::vector<uint8_t>& exif) {
    const WebPData image{webp.data(), webp.size()};
    const WebPData chunk{exif.data(), exif.size()};
    WebPMux* mux = WebPMuxCreate(&image, 1);
    WebPData assembled;
    WebPDataInit(&assembled);
    const bool ok = mux && WebPMuxSetChunk(mux, "EXIF", &chunk, 1) == WEBP_MUX_OK &&
                    WebPMuxAssemble(mux, &assembled) == WEBP_MUX_OK;
    std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
    WebPDataClear(&assembled);
    WebPMuxDelete(mux);
    if (!ok) throw std::runtime_error("adding EXIF to WebP failed");
    return out;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace mclip::testing
