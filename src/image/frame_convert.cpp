#include "image/frame_convert.h"

#include <string>

#include "common/error.h"
#include "image/yuv.h"

namespace mclip {
namespace {

constexpr int kMaxSide = 1 << 15;

size_t packed_bytes_per_pixel(PixelFormat format) { return format == PixelFormat::rgba ? 4 : 3; }

void check_frame(const FrameView& f) {
    if (f.width <= 0 || f.height <= 0 || f.width > kMaxSide || f.height > kMaxSide) {
        throw Error(ErrorCode::invalid_argument, "frame size " + std::to_string(f.width) + "x" + std::to_string(f.height) +
                                                     " is not between 1 and " + std::to_string(kMaxSide));
    }
    if (!f.planes[0]) throw Error(ErrorCode::invalid_argument, "frame has no pixels");
    if (f.format == PixelFormat::nv12) {
        if (!f.planes[1]) throw Error(ErrorCode::invalid_argument, "NV12 frame has no UV plane");
        if (f.strides[0] < static_cast<size_t>(f.width) || f.strides[1] < static_cast<size_t>((f.width + 1) / 2 * 2)) {
            throw Error(ErrorCode::invalid_argument, "NV12 frame strides are smaller than its width");
        }
        return;
    }
    if (f.strides[0] < static_cast<size_t>(f.width) * packed_bytes_per_pixel(f.format)) {
        throw Error(ErrorCode::invalid_argument, "frame stride " + std::to_string(f.strides[0]) + " is smaller than a row of " +
                                                     std::to_string(f.width) + " pixels");
    }
}

}  // namespace

Image frame_to_rgb(const FrameView& f) {
    check_frame(f);
    Image image{f.width, f.height, std::vector<uint8_t>(static_cast<size_t>(f.width) * f.height * 3)};
    uint8_t* out = image.rgb.data();
    if (f.format == PixelFormat::nv12) {
        const YuvTables t = yuv_tables(f.matrix == YuvMatrix::bt709 ? kBt709 : kBt601, f.full_range);
        for (int y = 0; y < f.height; ++y) {
            const uint8_t* luma_row = f.planes[0] + static_cast<size_t>(y) * f.strides[0];
            const uint8_t* chroma_row = f.planes[1] + static_cast<size_t>(y / 2) * f.strides[1];
            for (int x = 0; x < f.width; ++x, out += 3) {
                const int32_t luma = t.luma[luma_row[x]];
                const uint8_t u = chroma_row[x / 2 * 2], v = chroma_row[x / 2 * 2 + 1];
                out[0] = clip_fixed(luma + t.r_v[v]);
                out[1] = clip_fixed(luma - t.g_u[u] - t.g_v[v]);
                out[2] = clip_fixed(luma + t.b_u[u]);
            }
        }
        return image;
    }
    const size_t step = packed_bytes_per_pixel(f.format);
    const bool bgr = f.format == PixelFormat::bgr24;
    for (int y = 0; y < f.height; ++y) {
        const uint8_t* in = f.planes[0] + static_cast<size_t>(y) * f.strides[0];
        for (int x = 0; x < f.width; ++x, in += step, out += 3) {
            out[0] = in[bgr ? 2 : 0];
            out[1] = in[1];
            out[2] = in[bgr ? 0 : 2];
        }
    }
    return image;
}

}  // namespace mclip
