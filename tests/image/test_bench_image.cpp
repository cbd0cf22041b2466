// The image benchmark runs and reports plausible numbers (its timings are not asserted).
#include <gtest/gtest.h>

#include "bench_image.h"

namespace {

TEST(BenchImage, ReportsDecodeAndPreprocessTimesOfAFullHdFrame) {
    const auto report = mclip::tools::bench_image_preprocess(64, 2);
    EXPECT_EQ(report.at("width"), 1920);
    EXPECT_EQ(report.at("height"), 1080);
    EXPECT_EQ(report.at("size"), 64);
    // A photo-like frame compresses, but not to nothing.
    EXPECT_GT(report.at("jpeg_bytes").get<size_t>(), 20000u);
    EXPECT_LT(report.at("jpeg_bytes").get<size_t>(), 1920u * 1080 * 3 / 4);
    EXPECT_GT(report.at("png_bytes").get<size_t>(), report.at("jpeg_bytes").get<size_t>());
    for (const char* key : {"decode_jpeg_median_ms", "decode_png_median_ms", "preprocess_median_ms", "preprocess_first_ms"}) {
        EXPECT_GT(report.at(key).get<double>(), 0.0) << key;
    }
    EXPECT_GE(report.at("decode_jpeg_p90_ms").get<double>(), report.at("decode_jpeg_median_ms").get<double>());
}

}  // namespace
