// `mclip preprocess`: images as the model sees them, written as a float32 .npy [N, 3, size, size].
//
//   mclip preprocess --size 256 photo.jpg --out photo.npy
//
// The defaults are MobileCLIP's reference preprocessing (shorter side to --size with PIL's
// bilinear resize, center crop, x / 255, no normalization); EXIF orientation is applied unless
// --no-exif is given (the reference ignores it).
#include <algorithm>
#include <memory>

#include "command.h"
#include "mclip/image.h"
#include "mclip/npy.h"
#include "mclip/preprocess.h"

namespace {

struct PreprocessArgs {
    std::vector<std::string> images;
    std::string output;
    int size = 256;
    int resize_size = 0;
    bool squash = false;
    std::string interpolation = "bilinear";
    std::vector<float> mean;
    std::vector<float> std;
    bool no_exif = false;
    uint64_t max_pixels = mclip::DecodeOptions{}.max_pixels;
};

void run(const PreprocessArgs& args) {
    mclip::PreprocessParams params;
    params.size = args.size;
    params.resize_size = args.resize_size;
    params.resize_mode = args.squash ? mclip::ResizeMode::squash : mclip::ResizeMode::shorter_side;
    params.interpolation = mclip::interpolation_from_name(args.interpolation);
    if (!args.mean.empty()) std::copy(args.mean.begin(), args.mean.end(), params.mean.begin());
    if (!args.std.empty()) std::copy(args.std.begin(), args.std.end(), params.std.begin());
    mclip::Preprocessor preprocessor(params);

    mclip::DecodeOptions decode;
    decode.apply_exif_orientation = !args.no_exif;
    decode.max_pixels = args.max_pixels;
    const int64_t count = static_cast<int64_t>(args.images.size());
    const size_t per_image = static_cast<size_t>(3) * args.size * args.size;
    std::vector<float> batch(per_image * count);
    for (int64_t i = 0; i < count; ++i) {
        const mclip::Image image = mclip::decode_image_file(args.images[i], decode);
        preprocessor.run(image, batch.data() + per_image * i);
    }
    mclip::write_npy_f32(args.output, {count, 3, args.size, args.size}, batch.data());
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<PreprocessArgs>();
    auto* cmd = app.add_subcommand("preprocess", "Decode and preprocess images into a float32 .npy [N, 3, size, size]");
    cmd->add_option("images", args->images, "Image files (JPEG, PNG, WebP)")->required();
    cmd->add_option("--out", args->output, "Output .npy file")->required();
    cmd->add_option("--size", args->size, "Side of the square model input")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--resize-size", args->resize_size, "Resize target before the center crop (default: --size)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--squash", args->squash, "Resize both sides to the target instead of the shorter one");
    cmd->add_option("--interpolation", args->interpolation, "bilinear or bicubic (PIL's filters)")->capture_default_str();
    cmd->add_option("--mean", args->mean, "Per-channel mean subtracted after scaling to [0, 1] (3 values)")->expected(3);
    cmd->add_option("--std", args->std, "Per-channel std dividing after the mean (3 values)")->expected(3);
    cmd->add_flag("--no-exif", args->no_exif, "Ignore the EXIF orientation tag, as the reference does");
    cmd->add_option("--max-pixels", args->max_pixels, "Refuse images with more pixels (0: no limit)")->capture_default_str();
    cmd->callback([args, &exit_code] {
        run(*args);
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("preprocess", setup);

}  // namespace
