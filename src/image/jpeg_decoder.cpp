// JPEG through libjpeg-turbo, set up as Pillow's JpegDecode.c leaves it: the accurate integer
// IDCT (JDCT_ISLOW) and fancy (triangle-filter) chroma upsampling, both libjpeg defaults, so that
// decoded pixels equal PIL's bit for bit.
//
// libjpeg reports fatal errors through error_exit, whose default calls exit(); ours longjmps back
// to decode_into(), which therefore holds only trivially destructible locals (a longjmp must not
// skip a destructor) and reports a status that the caller turns into an exception.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "common/error.h"
#include "image/decoders.h"

namespace mclip::image_detail {

namespace {

// A progressive JPEG may carry any number of scans, each re-running the entropy decoder over the
// whole image; thousands of tiny scans make a small file take minutes to decode (libjpeg-turbo's
// advice for untrusted input is a scan limit, as its djpeg -maxscans does). Real encoders use ~10.
constexpr int kMaxScans = 1000;
// libjpeg's own working memory (a progressive image keeps every DCT coefficient: 2 bytes per
// sample, 72 MB for 24 megapixels at 4:2:0): at most this, or 100 times the file when that is
// more, so a small file with a huge declared size is refused instead of growing to gigabytes.
constexpr size_t kMinWorkingMemoryBytes = size_t{128} << 20;
constexpr size_t kWorkingMemoryPerFileByte = 100;

enum class Status { ok, library_error, truncated, too_many_scans, unsupported_components };

struct ErrorManager {
    jpeg_error_mgr pub;  // first member: libjpeg hands callbacks a pointer to it
    std::jmp_buf jump;
    Status status = Status::ok;
    char message[JMSG_LENGTH_MAX] = {};
};

struct Session {
    jpeg_decompress_struct cinfo{};
    ErrorManager errors{};
    jpeg_progress_mgr progress{};
    bool created = false;
    bool want_exif = false;
    std::vector<uint8_t> row;  // one decoded scanline for grayscale and CMYK images
    DecodedImage result;
    ~Session() {
        if (created) jpeg_destroy_decompress(&cinfo);
    }
};

[[noreturn]] void fail(j_common_ptr cinfo, Status status) {
    auto* errors = reinterpret_cast<ErrorManager*>(cinfo->err);
    errors->status = status;
    std::longjmp(errors->jump, 1);
}

void on_error(j_common_ptr cinfo) {
    (*cinfo->err->format_message)(cinfo, reinterpret_cast<ErrorManager*>(cinfo->err)->message);
    fail(cinfo, Status::library_error);
}

// Warnings (level -1) are ignored like Pillow ignores them, except running out of data: libjpeg
// would pad the image with gray, PIL raises "image file is truncated". A file that ends right
// after the last scanline (no EOI marker) is accepted by both, since decoding stops there.
void on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) fail(cinfo, Status::truncated);
}

void on_progress(j_common_ptr cinfo) {
    if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxScans) fail(cinfo, Status::too_many_scans);
}

// Copies the first APP1 segment that starts with "Exif\0\0" (the TIFF block follows it).
void take_exif(Session& s) {
    for (jpeg_saved_marker_ptr marker = s.cinfo.marker_list; marker; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= 6 && std::memcmp(marker->data, "Exif\0\0", 6) == 0) {
            s.result.exif.assign(marker->data, marker->data + marker->data_length);
            return;
        }
    }
}

// CMYK as Pillow decodes it: libjpeg returns the stored values (YCCK is converted to CMYK by
// libjpeg), Pillow reads them as "CMYK;I", i.e. inverted (Adobe's convention, assumed for every
// 4-channel JPEG), then convert("RGB") computes, with c, m, y, k the inverted values,
//   R = clip(nk - muldiv255(c, nk)), nk = 255 - k, muldiv255(a, b) = ((t >> 8) + t) >> 8 with t = a*b + 128
// (Convert.c cmyk2rgb). Channel order R<-C, G<-M, B<-Y.
uint8_t cmyk_channel_to_rgb(int stored_channel, int nk) {
    const int inverted = 255 - stored_channel;
    const int t = inverted * nk + 128;
    const int v = nk - (((t >> 8) + t) >> 8);
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Runs libjpeg; returns how it ended. The caller has checked nothing yet: the pixel limit is
// checked here, between reading the header and allocating the image.
Status decode_into(Session& s, std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options) {
    if (setjmp(s.errors.jump)) return s.errors.status;
    jpeg_create_decompress(&s.cinfo);
    s.created = true;
    s.cinfo.mem->max_memory_to_use =
        static_cast<long>(std::max(kMinWorkingMemoryBytes, std::min(bytes.size(), size_t{1} << 40) * kWorkingMemoryPerFileByte));
    jpeg_mem_src(&s.cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    if (s.want_exif) jpeg_save_markers(&s.cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&s.cinfo, TRUE);

    check_pixel_limit(s.cinfo.image_width, s.cinfo.image_height, name, options);
    switch (s.cinfo.num_components) {
        case 1: s.cinfo.out_color_space = JCS_GRAYSCALE; break;
        case 3: s.cinfo.out_color_space = JCS_RGB; break;
        case 4: s.cinfo.out_color_space = JCS_CMYK; break;
        default: return Status::unsupported_components;
    }
    s.cinfo.dct_method = JDCT_ISLOW;
    s.cinfo.do_fancy_upsampling = TRUE;
    s.cinfo.progress = &s.progress;
    if (s.want_exif) take_exif(s);

    jpeg_start_decompress(&s.cinfo);
    const int width = static_cast<int>(s.cinfo.output_width);
    const int height = static_cast<int>(s.cinfo.output_height);
    const int channels = s.cinfo.output_components;
    Image& image = s.result.image;
    image.width = width;
    image.height = height;
    // Reserved, then grown row by row: memory is touched only as rows are decoded, so a truncated
    // file claiming a huge size fails before it occupies more than the rows its data reached.
    const size_t row_bytes = static_cast<size_t>(width) * 3;
    image.rgb.reserve(row_bytes * height);
    if (channels != 3) s.row.resize(static_cast<size_t>(width) * channels);
    while (s.cinfo.output_scanline < s.cinfo.output_height) {
        image.rgb.resize(row_bytes * (s.cinfo.output_scanline + 1));
        uint8_t* out = image.rgb.data() + static_cast<size_t>(s.cinfo.output_scanline) * row_bytes;
        JSAMPROW target = channels == 3 ? out : s.row.data();
        jpeg_read_scanlines(&s.cinfo, &target, 1);
        if (channels == 1) {
            for (int x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = s.row[x];
        } else if (channels == 4) {
            for (int x = 0; x < width; ++x) {
                const uint8_t* cmyk = s.row.data() + 4 * x;
                const int nk = cmyk[3];  // 255 - inverted k = the stored k
                out[3 * x + 0] = cmyk_channel_to_rgb(cmyk[0], nk);
                out[3 * x + 1] = cmyk_channel_to_rgb(cmyk[1], nk);
                out[3 * x + 2] = cmyk_channel_to_rgb(cmyk[2], nk);
            }
        }
    }
    // No jpeg_finish_decompress: it would only read up to the EOI marker, which PIL does not
    // require either.
    return Status::ok;
}

}  // namespace

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options) {
    Session s;
    s.cinfo.err = jpeg_std_error(&s.errors.pub);
    s.errors.pub.error_exit = on_error;
    s.errors.pub.emit_message = on_message;
    s.progress.progress_monitor = on_progress;
    s.want_exif = options.apply_exif_orientation;
    switch (decode_into(s, bytes, name, options)) {
        case Status::ok: return std::move(s.result);
        case Status::truncated:
            throw Error(ErrorCode::invalid_input, name + ": truncated JPEG (the data ends before the image is complete)");
        case Status::too_many_scans:
            throw Error(ErrorCode::invalid_input, name + ": corrupt or hostile JPEG (more than " +
                                                      std::to_string(kMaxScans) + " progressive scans)");
        case Status::unsupported_components:
            throw Error(ErrorCode::invalid_input, name + ": unsupported JPEG with " +
                                                      std::to_string(s.cinfo.num_components) +
                                                      " color components (1, 3 or 4 are supported)");
        case Status::library_error: break;
    }
    throw Error(ErrorCode::invalid_input, name + ": corrupt or unsupported JPEG: " + s.errors.message);
}

}  // namespace mclip::image_detail
