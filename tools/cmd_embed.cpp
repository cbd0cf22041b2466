// `mclip embed`: image or text embeddings as a numpy .npy file [N, embed_dim].
#include <cstdio>

#include "command.h"
#include "image_inputs.h"
#include "mclip/mclip.h"
#include "mclip/npy.h"
#include "model_options.h"

namespace {

struct EmbedArgs {
    mclip::tools::ModelOptions model;
    std::string image_npy;
    std::string tokens_npy;
    std::vector<std::string> texts;
    std::vector<std::string> images;
    bool no_exif = false;
    std::string output;
    bool normalize = false;
};

std::vector<int32_t> tokens_from_npy(const mclip::Array<int64_t>& tokens, int context, const std::string& path) {
    if (tokens.shape.size() != 2 || tokens.shape[1] != context) {
        std::string shape;
        for (int64_t d : tokens.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        throw mclip::Error(mclip::ErrorCode::invalid_input,
                           path + ": token ids must be [M, " + std::to_string(context) + "], got [" + shape + "]");
    }
    std::vector<int32_t> ids(tokens.values.size());
    for (size_t i = 0; i < ids.size(); ++i) {
        const int64_t v = tokens.values[i];
        if (v < 0 || v > INT32_MAX) throw mclip::Error(mclip::ErrorCode::invalid_input, path + ": token id " + std::to_string(v) + " is out of range");
        ids[i] = static_cast<int32_t>(v);
    }
    return ids;
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<EmbedArgs>();
    auto* cmd = app.add_subcommand("embed", "Compute image or text embeddings");
    mclip::tools::add_model_options(*cmd, args->model)->required();
    auto* image = cmd->add_option("--image-npy", args->image_npy, "Preprocessed images, float32 [N, 3, H, W]")->check(CLI::ExistingFile);
    auto* tokens = cmd->add_option("--tokens-npy", args->tokens_npy, "Token ids, int32 or int64 [M, 77]")->check(CLI::ExistingFile);
    auto* texts = cmd->add_option("--text", args->texts, "Text to tokenize and encode (repeatable)")->allow_extra_args(false);
    auto* files = cmd->add_option("--image", args->images, "Image files or folders to decode, preprocess and encode");
    cmd->add_flag("--no-exif", args->no_exif, "Ignore EXIF orientation (the reference preprocessing does)");
    for (auto* a : {image, tokens, texts, files}) {
        for (auto* b : {image, tokens, texts, files}) {
            if (a != b) a->excludes(b);
        }
    }
    cmd->add_option("--out", args->output, "Output .npy file, float32 [N, embed_dim]")->required();
    cmd->add_flag("--normalize", args->normalize, "Scale each embedding to unit length");
    cmd->callback([args, &exit_code] {
        if (args->image_npy.empty() && args->tokens_npy.empty() && args->texts.empty() && args->images.empty()) {
            throw mclip::Error(mclip::ErrorCode::invalid_argument, "embed needs an input: --image, --image-npy, --text or --tokens-npy");
        }
        const mclip::Model model = mclip::tools::load_model(args->model);
        mclip::Embeddings embeddings;
        if (!args->image_npy.empty()) {
            const mclip::Array<float> images = mclip::read_npy_f32(args->image_npy);
            const int size = model.image_size();
            if (images.shape.size() != 4 || images.shape[1] != 3 || images.shape[2] != size || images.shape[3] != size) {
                throw mclip::Error(mclip::ErrorCode::invalid_input, args->image_npy + ": images must be [N, 3, " + std::to_string(size) +
                                                                        ", " + std::to_string(size) + "] for " + model.info().name);
            }
            embeddings = model.embed_images(images.values.data(), static_cast<int>(images.shape[0]));
        } else if (!args->images.empty()) {
            const auto paths = mclip::tools::collect_image_paths(args->images);
            if (paths.empty()) throw mclip::Error(mclip::ErrorCode::invalid_argument, "no images found in the given paths");
            mclip::DecodeOptions decode;
            decode.apply_exif_orientation = !args->no_exif;
            embeddings = model.embed_image_files(std::vector<std::string>(paths.begin(), paths.end()), decode);
        } else if (!args->texts.empty()) {
            embeddings = model.embed_texts(args->texts);
        } else {
            const mclip::Array<int64_t> tokens = mclip::read_npy_integers(args->tokens_npy);
            const auto ids = tokens_from_npy(tokens, model.info().context_length, args->tokens_npy);
            embeddings = model.embed_tokens(ids.data(), static_cast<int>(tokens.shape[0]));
        }
        if (args->normalize) mclip::normalize_rows(embeddings);
        mclip::write_npy_f32(args->output, {embeddings.rows, embeddings.dim}, embeddings.values.data());
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("embed", setup);

}  // namespace
