// Image files as `mclip classify / embed / preprocess` read them: detection by content, the JPEG,
// PNG and WebP decoders with the pixel limit, EXIF orientation, then the reference
// preprocessing. The last input byte also picks the options, so that both EXIF settings and both
// interpolations are reached while real image files still serve as seeds unchanged.
#include "fuzz_support.h"
#include "mclip/image.h"
#include "mclip/preprocess.h"

#include <vector>

namespace {

// Small enough that a hostile header cannot make one input take seconds under the sanitizers,
// large enough for every decoder path (progressive, interlaced, animated) at real sizes.
constexpr uint64_t kFuzzMaxPixels = uint64_t{1} << 22;

void image(std::span<const uint8_t> bytes) {
    const uint8_t options_byte = bytes.empty() ? 0 : bytes.back();
    mclip::DecodeOptions options;
    options.apply_exif_orientation = (options_byte & 1) != 0;
    options.max_pixels = kFuzzMaxPixels;
    mclip::fuzz::expect_clean([&] {
        const mclip::Image decoded = mclip::decode_image_memory(bytes, "input", options);
        if (decoded.rgb.size() != static_cast<size_t>(decoded.width) * decoded.height * 3) std::abort();
        mclip::PreprocessParams params;
        params.size = 32;
        params.resize_size = (options_byte & 2) ? 40 : 0;
        params.resize_mode = (options_byte & 4) ? mclip::ResizeMode::squash : mclip::ResizeMode::shorter_side;
        params.interpolation = (options_byte & 8) ? mclip::Interpolation::bicubic : mclip::Interpolation::bilinear;
        std::vector<float> out(3 * params.size * params.size);
        mclip::preprocess_image(decoded, params, out.data());
    });
}

}  // namespace

MCLIP_FUZZ_TARGET(image)
