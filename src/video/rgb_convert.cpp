#include "video/rgb_convert.h"

#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"
#include "image/yuv.h"
#include "video/ffmpeg_functions.h"
#include "video/frame.h"

namespace mclip {

namespace {

// Where one 8-bit component of pixel (x, y) lives:
// data[plane] + (y >> shift_y) * linesize[plane] + (x >> shift_x) * step + offset.
struct ComponentLayout {
    int plane = 0;
    int step = 1;
    int offset = 0;
    int shift_x = 0;
    int shift_y = 0;
};

enum class ColorModel { rgb, yuv, gray };

struct ReadPlan {
    int format = -1;  // the frames' format, colorspace and range it was made for
    int colorspace = -1;
    int range = -1;
    bool through_rgb24 = false;  // read swscale's RGB24 conversion instead of the frame
    ColorModel model = ColorModel::rgb;
    ComponentLayout components[3];
    YuvTables tables;
};

// (Kr, Kb) of the luma equation of a frame's colorspace.
YuvCoefficients yuv_coefficients(AVColorSpace colorspace) {
    switch (colorspace) {
        case AVCOL_SPC_BT709: return kBt709;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL: return {0.2627, 0.0593};
        case AVCOL_SPC_SMPTE240M: return {0.212, 0.087};
        case AVCOL_SPC_FCC: return {0.30, 0.11};
        default: return kBt601;  // also what FFmpeg assumes when the file says nothing
    }
}

// The plan for formats whose components are whole bytes; false when the format needs swscale.
bool direct_plan(const AVPixFmtDescriptor& desc, ReadPlan& plan) {
    const uint64_t indirect = AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_FLOAT;
    if (desc.flags & indirect) return false;
    const bool rgb = desc.flags & AV_PIX_FMT_FLAG_RGB;
    const int color_components = desc.nb_components >= 3 ? 3 : 1;
    if (rgb && color_components != 3) return false;
    for (int c = 0; c < color_components; ++c) {
        const AVComponentDescriptor& comp = desc.comp[c];
        if (comp.depth != 8 || comp.shift != 0) return false;
        const bool chroma = !rgb && c > 0;
        plan.components[c] = {comp.plane, comp.step, comp.offset, chroma ? desc.log2_chroma_w : 0,
                              chroma ? desc.log2_chroma_h : 0};
    }
    plan.model = rgb ? ColorModel::rgb : color_components == 3 ? ColorModel::yuv : ColorModel::gray;
    return true;
}

bool is_full_range(const AVFrame& frame, const AVPixFmtDescriptor& desc) {
    // The yuvj* formats are full range whatever the frame says (their old, deprecated meaning).
    return frame.color_range == AVCOL_RANGE_JPEG || std::strncmp(desc.name, "yuvj", 4) == 0;
}

void convert_rows(const AVFrame& frame, const ReadPlan& plan, const PixelRect& r, uint8_t* rgb, size_t stride) {
    const ComponentLayout* c = plan.components;
    for (int y = r.y0; y < r.y1; ++y) {
        const uint8_t* row[3];
        const int components = plan.model == ColorModel::gray ? 1 : 3;
        for (int i = 0; i < components; ++i) {
            row[i] = frame.data[c[i].plane] + static_cast<ptrdiff_t>(y >> c[i].shift_y) * frame.linesize[c[i].plane] + c[i].offset;
        }
        uint8_t* out = rgb + static_cast<size_t>(y) * stride;
        switch (plan.model) {
            case ColorModel::rgb:
                for (int x = r.x0; x < r.x1; ++x) {
                    out[3 * x + 0] = row[0][x * c[0].step];
                    out[3 * x + 1] = row[1][x * c[1].step];
                    out[3 * x + 2] = row[2][x * c[2].step];
                }
                break;
            case ColorModel::gray: {
                const YuvTables& t = plan.tables;
                for (int x = r.x0; x < r.x1; ++x) out[3 * x + 0] = out[3 * x + 1] = out[3 * x + 2] = clip_fixed(t.luma[row[0][x * c[0].step]]);
                break;
            }
            case ColorModel::yuv: {
                const YuvTables& t = plan.tables;
                const auto put = [&](int x, int32_t red, int32_t green, int32_t blue) {
                    const int32_t luma = t.luma[row[0][x * c[0].step]];
                    out[3 * x + 0] = clip_fixed(luma + red);
                    out[3 * x + 1] = clip_fixed(luma - green);
                    out[3 * x + 2] = clip_fixed(luma + blue);
                };
                const auto chroma_at = [&](int x, int32_t& red, int32_t& green, int32_t& blue) {
                    const uint8_t u = row[1][(x >> c[1].shift_x) * c[1].step];
                    const uint8_t v = row[2][(x >> c[2].shift_x) * c[2].step];
                    red = t.r_v[v];
                    green = t.g_u[u] + t.g_v[v];
                    blue = t.b_u[u];
                };
                int32_t red, green, blue;
                int x = r.x0;
                if (c[1].shift_x == 1 && c[2].shift_x == 1) {
                    // Horizontally subsampled chroma (4:2:0, 4:2:2): one lookup serves a pixel pair.
                    if (x < r.x1 && (x & 1)) {
                        chroma_at(x, red, green, blue);
                        put(x++, red, green, blue);
                    }
                    for (; x + 1 < r.x1; x += 2) {
                        chroma_at(x, red, green, blue);
                        put(x, red, green, blue);
                        put(x + 1, red, green, blue);
                    }
                }
                for (; x < r.x1; ++x) {
                    chroma_at(x, red, green, blue);
                    put(x, red, green, blue);
                }
                break;
            }
        }
    }
}

int swscale_colorspace(AVColorSpace colorspace) {
    switch (colorspace) {
        case AVCOL_SPC_BT709: return SWS_CS_ITU709;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
        case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
        case AVCOL_SPC_FCC: return SWS_CS_FCC;
        default: return SWS_CS_DEFAULT;
    }
}

}  // namespace

struct RgbConverter::State {
    ReadPlan plan;
    // The swscale path: the whole frame as RGB24, then read like any RGB24 frame.
    SwsContext* scaler = nullptr;
    AvFramePtr scaled;

    ~State() { ffmpeg().sws_freeContext(scaler); }

    // The frame to read pixels from (the input, or its RGB24 conversion) with its plan.
    const AVFrame& prepare(const AVFrame& frame) {
        const auto* desc = ffmpeg().av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
        if (!desc) throw Error(ErrorCode::unsupported, "video frame has an unknown pixel format " + std::to_string(frame.format));
        if (frame.width < 1 || frame.height < 1) {
            throw Error(ErrorCode::invalid_input, "video frame has no pixels (" + std::to_string(frame.width) + "x" +
                                                      std::to_string(frame.height) + ")");
        }
        if (plan.format != frame.format || plan.colorspace != frame.colorspace || plan.range != frame.color_range) {
            plan = ReadPlan{};
            if (!direct_plan(*desc, plan)) {
                if (!ffmpeg().sws_isSupportedInput(static_cast<AVPixelFormat>(frame.format))) {
                    throw Error(ErrorCode::unsupported, "pixel format " + pixel_format_name(frame.format) + " is not supported");
                }
                direct_plan(*ffmpeg().av_pix_fmt_desc_get(AV_PIX_FMT_RGB24), plan);
                plan.through_rgb24 = true;
            }
            // Gray is full range unless the frame says otherwise (FFmpeg's convention); YUV the reverse.
            if (plan.model == ColorModel::yuv) plan.tables = yuv_tables(yuv_coefficients(frame.colorspace), is_full_range(frame, *desc));
            if (plan.model == ColorModel::gray) plan.tables = yuv_tables(yuv_coefficients(frame.colorspace), frame.color_range != AVCOL_RANGE_MPEG);
            plan.format = frame.format;
            plan.colorspace = frame.colorspace;
            plan.range = frame.color_range;
        }
        return plan.through_rgb24 ? to_rgb24(frame, *desc) : frame;
    }

    const AVFrame& to_rgb24(const AVFrame& frame, const AVPixFmtDescriptor& desc) {
        const auto format = static_cast<AVPixelFormat>(frame.format);
        scaler = ffmpeg().sws_getCachedContext(scaler, frame.width, frame.height, format, frame.width, frame.height,
                                      AV_PIX_FMT_RGB24, SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                                      nullptr, nullptr, nullptr);
        if (!scaler) throw Error(ErrorCode::unsupported, "cannot convert pixel format " + pixel_format_name(frame.format) + " to RGB");
        if (!(desc.flags & AV_PIX_FMT_FLAG_RGB)) {
            const int* coefficients = ffmpeg().sws_getCoefficients(swscale_colorspace(frame.colorspace));
            ffmpeg().sws_setColorspaceDetails(scaler, coefficients, is_full_range(frame, desc) ? 1 : 0, ffmpeg().sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                     0, kFixedOne, kFixedOne);
        }
        if (!scaled || scaled->width != frame.width || scaled->height != frame.height) {
            scaled = allocate_av_frame();
            scaled->format = AV_PIX_FMT_RGB24;
            scaled->width = frame.width;
            scaled->height = frame.height;
            if (ffmpeg().av_frame_get_buffer(scaled.get(), 0) < 0) throw Error(ErrorCode::internal, "out of memory converting a video frame");
        }
        ffmpeg().sws_scale(scaler, frame.data, frame.linesize, 0, frame.height, scaled->data, scaled->linesize);
        return *scaled;
    }
};

RgbConverter::RgbConverter() : state_(std::make_unique<State>()) {}
RgbConverter::~RgbConverter() = default;

void RgbConverter::convert(const AVFrame& frame, const PixelRect& region, uint8_t* rgb, size_t stride) {
    if (region.x0 < 0 || region.y0 < 0 || region.x1 > frame.width || region.y1 > frame.height || region.x0 > region.x1 ||
        region.y0 > region.y1) {
        throw Error(ErrorCode::internal, "pixel rectangle outside the video frame");
    }
    const AVFrame& source = state_->prepare(frame);
    convert_rows(source, state_->plan, region, rgb, stride);
}

Image RgbConverter::convert(const AVFrame& frame) {
    Image image;
    image.width = frame.width;
    image.height = frame.height;
    image.rgb.resize(static_cast<size_t>(frame.width) * frame.height * 3);
    convert(frame, {0, 0, frame.width, frame.height}, image.rgb.data(), static_cast<size_t>(frame.width) * 3);
    return image;
}

}  // namespace mclip
