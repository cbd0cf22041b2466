// Image input speed for `mclip bench`: decoding a 1920x1080 frame and preprocessing it.
#pragma once

#include <nlohmann/json.hpp>

namespace mclip::tools {

// Builds a photo-like 1920x1080 frame in memory, encodes it as JPEG (quality 90, 4:2:0) and PNG,
// then times `repeats` decodes of each and `repeats` preprocessings of the decoded frame to a
// `size` x `size` model input (PIL bilinear shorter-side resize, center crop, float CHW) on the
// calling thread. Returns {"width", "height", "size", "repeats", "jpeg_bytes", "png_bytes",
// "decode_jpeg_median_ms", "decode_jpeg_p90_ms", "decode_png_median_ms", "decode_png_p90_ms",
// "preprocess_first_ms" (including the weight tables), "preprocess_median_ms", "preprocess_p90_ms"}.
nlohmann::json bench_image_preprocess(int size = 256, int repeats = 20);

}  // namespace mclip::tools
