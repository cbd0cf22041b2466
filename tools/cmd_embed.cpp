// `mclip embed`: image or text embeddings as a numpy .npy file [N, embed_dim].
#include <cstdio>

#include "command.h"
#include "image_inputs.h"
#include "common/error.h"
#include "io/npy.h"
#include "model_options.h"
#include "models/model.h"

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

std::vector<int32_t> tokens_from_npy(const mclip::Tensor& tokens, int context, const std::string& path) {
    if (tokens.rank() != 2 || tokens.dim(1) != context) {
        throw mclip::Error(mclip::ErrorCode::invalid_input, path + ": token ids must be [M, " + std::to_string(context) +
                                                                "], got " + mclip::shape_to_string(tokens.shape()));
    }
    std::vector<int32_t> ids(tokens.elements());
    for (int64_t i = 0; i < tokens.elements(); ++i) {
        int64_t v;
        if (tokens.dtype() == mclip::DType::i64) {
            v = static_cast<const int64_t*>(tokens.data())[i];
        } else if (tokens.dtype() == mclip::DType::i32) {
            v = static_cast<const int32_t*>(tokens.data())[i];
        } else {
            throw mclip::Error(mclip::ErrorCode::invalid_input, path + ": token ids must be int32 or int64, got " +
                                                                    std::string(mclip::to_string(tokens.dtype())));
        }
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
        auto model = mclip::tools::load_model(args->model);
        mclip::Tensor embeddings;
        if (!args->image_npy.empty()) {
            const mclip::Tensor images = mclip::read_npy(args->image_npy);
            if (images.dtype() != mclip::DType::f32) {
                throw mclip::Error(mclip::ErrorCode::invalid_input, args->image_npy + ": images must be float32, got " +
                                                                        std::string(mclip::to_string(images.dtype())));
            }
            embeddings = model->encode_images(images);
        } else if (!args->images.empty()) {
            const auto paths = mclip::tools::collect_image_paths(args->images);
            if (paths.empty()) throw mclip::Error(mclip::ErrorCode::invalid_argument, "no images found in the given paths");
            embeddings = model->encode_images(model->load_images(paths, !args->no_exif));
        } else if (!args->texts.empty()) {
            embeddings = model->encode_texts(args->texts);
        } else {
            const mclip::Tensor tokens = mclip::read_npy(args->tokens_npy);
            const auto ids = tokens_from_npy(tokens, model->config().text.context, args->tokens_npy);
            embeddings = model->encode_tokens(ids.data(), static_cast<int>(tokens.dim(0)));
        }
        if (args->normalize) mclip::normalize_rows(embeddings);
        mclip::write_npy(args->output, embeddings);
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("embed", setup);

}  // namespace
