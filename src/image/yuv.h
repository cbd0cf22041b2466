// YUV → RGB in 16.16 fixed point, shared by the video pipeline (video/rgb_convert.h) and the
// frames the API takes (image/frame_convert.h), so a camera frame gives the same pixels either way:
//   Y' = (Y - 16) / 219, Cb = (U - 128) / 224, Cr = (V - 128) / 224     (full range: /255, no 16)
//   R = Y' + 2(1 - Kr) Cr,  B = Y' + 2(1 - Kb) Cb,
//   G = Y' - (2 Kb (1 - Kb) / Kg) Cb - (2 Kr (1 - Kr) / Kg) Cr,  Kg = 1 - Kr - Kb
#pragma once

#include <cstdint>

namespace mclip {

// 1.0 in 16.16 fixed point.
inline constexpr int32_t kFixedOne = 1 << 16;

struct YuvCoefficients {
    double kr = 0.299;
    double kb = 0.114;
};
inline constexpr YuvCoefficients kBt601{0.299, 0.114};
inline constexpr YuvCoefficients kBt709{0.2126, 0.0722};

// Each term of the formulas for every byte value, so a pixel costs lookups and adds:
// R = (luma[Y] + r_v[V]) >> 16, G = (luma[Y] - g_u[U] - g_v[V]) >> 16, B = (luma[Y] + b_u[U]) >> 16,
// with the rounding half-unit folded into luma.
struct YuvTables {
    int32_t luma[256];
    int32_t r_v[256];
    int32_t g_u[256];
    int32_t g_v[256];
    int32_t b_u[256];
};

YuvTables yuv_tables(const YuvCoefficients& coefficients, bool full_range);

inline uint8_t clip_fixed(int32_t rounded) {
    const int32_t v = rounded >> 16;
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace mclip
