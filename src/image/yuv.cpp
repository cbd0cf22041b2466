#include "image/yuv.h"

#include <cmath>

namespace mclip {
namespace {

int32_t to_fixed(double value) { return static_cast<int32_t>(std::lround(value * kFixedOne)); }

}  // namespace

YuvTables yuv_tables(const YuvCoefficients& k, bool full_range) {
    const double kg = 1.0 - k.kr - k.kb;
    const double luma_scale = full_range ? 1.0 : 255.0 / 219.0;
    const double chroma_scale = full_range ? 1.0 : 255.0 / 224.0;
    const int y_offset = full_range ? 0 : 16;
    const int32_t y_scale = to_fixed(luma_scale);
    const int32_t r_from_v = to_fixed(chroma_scale * 2.0 * (1.0 - k.kr));
    const int32_t g_from_u = to_fixed(chroma_scale * 2.0 * k.kb * (1.0 - k.kb) / kg);
    const int32_t g_from_v = to_fixed(chroma_scale * 2.0 * k.kr * (1.0 - k.kr) / kg);
    const int32_t b_from_u = to_fixed(chroma_scale * 2.0 * (1.0 - k.kb));
    YuvTables t;
    for (int i = 0; i < 256; ++i) {
        t.luma[i] = (i - y_offset) * y_scale + kFixedOne / 2;
        t.r_v[i] = r_from_v * (i - 128);
        t.g_u[i] = g_from_u * (i - 128);
        t.g_v[i] = g_from_v * (i - 128);
        t.b_u[i] = b_from_u * (i - 128);
    }
    return t;
}

}  // namespace mclip
