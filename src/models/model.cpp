#include "models/model.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/log.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/sha256.h"
#include "models/model_file.h"

namespace mclip {

std::unique_ptr<ClipModel> ClipModel::load(const std::filesystem::path& path, const ModelLoadOptions& options) {
    std::unique_ptr<ClipModel> model(new ClipModel());
    model->file_ = GgufFile::open(path);
    model->config_ = &model_file_config(*model->file_);
    const WeightSource weights = WeightSource::from_gguf(*model->file_);
    model->build(weights, static_cast<float>(model->file_->get_float("mclip.logit_scale")), options);
    model->tokenizer_ = load_tokenizer(*model->file_);
    return model;
}

std::unique_ptr<ClipModel> ClipModel::from_tensors(const ModelConfig& config, const TensorMap& tensors,
                                                   const ModelLoadOptions& options) {
    std::unique_ptr<ClipModel> model(new ClipModel());
    model->config_ = &config;
    const WeightSource weights = WeightSource::from_map(tensors, config.name);
    model->build(weights, weights.get("logit_scale", {}).f32()[0], options);
    return model;
}

void ClipModel::build(const WeightSource& weights, float raw_logit_scale, const ModelLoadOptions& options) {
    if (options.threads > 0) kernels::set_num_threads(options.threads);
    kernels::Backend& backend = kernels::backend_by_name(options.backend);
    backend_name_ = backend.name();
    const std::optional<Calibration> calibration =
        options.calibration ? std::optional(*options.calibration) : file_ ? read_calibration(*file_) : std::nullopt;
    precision_ = options.precision;
    if (options.fastest_precision) {
        precision_ = calibration && backend.native(kernels::Precision::int8) ? kernels::Precision::int8
                                                                              : kernels::fastest_precision(backend);
    }
    if (!backend.native(precision_) && backend.name() != "reference") {
        throw Error(ErrorCode::unsupported, std::string(kernels::to_string(precision_)) + " precision needs a CPU with " +
                                                (precision_ == kernels::Precision::int8 ? "AVX512-VNNI and AVX512-BF16, or AMX"
                                                                                        : "AVX512-BF16 or AMX") +
                                                "; use --precision f32");
    }
    GraphOptions graph{&backend, precision_};
    // int8 layers take their input ranges from the calibration; the backend fills them in.
    std::optional<CalibratedBackend> calibrated;
    if (precision_ == kernels::Precision::int8) {
        if (!calibration) {
            const std::string where = file_ ? file_->path() : config_->name;
            throw Error(ErrorCode::invalid_input, where + " has no int8 calibration: convert it again with --calibrate FOLDER "
                                                          "(typical images), or use --precision bf16");
        }
        graph.backend = &calibrated.emplace(backend, *calibration);
    }
    image_ = config_->image.kind == ImageEncoderKind::mci ? make_mci_image_encoder(*config_, weights, graph)
                                                          : make_vit_image_encoder(*config_, weights, graph);
    text_ = make_text_encoder(*config_, weights, graph);
    if (calibrated) {
        log_info(std::to_string(calibrated->int8_layers()) + " of " + std::to_string(calibrated->layers()) +
                 " layers run int8 (calibrated on " + calibration->source + "), the rest bf16");
    }
    // The reference clamps exp(logit_scale) at 100 (CLIP's training-time clamp).
    logit_scale_ = std::min(std::exp(raw_logit_scale), 100.0f);
}

Tensor ClipModel::encode_images(const Tensor& images, const ActivationHook& hook) const {
    const int size = config_->image.input_size;
    if (images.dtype() != DType::f32 || images.rank() != 4 || images.dim(1) != 3 || images.dim(2) != size ||
        images.dim(3) != size) {
        throw Error(ErrorCode::invalid_argument, config_->display_name + " takes float32 images [N, 3, " + std::to_string(size) +
                                                     ", " + std::to_string(size) + "], got " + to_string(images.dtype()) + " " +
                                                     shape_to_string(images.shape()));
    }
    return image_->encode(images, hook);
}

Tensor ClipModel::encode_tokens(const int32_t* tokens, int n, const ActivationHook& hook) const {
    return text_->encode(tokens, n, hook);
}

Tensor ClipModel::encode_texts(const std::vector<std::string>& texts) const {
    if (!tokenizer_) {
        const std::string where = file_ ? file_->path() : config_->name;
        throw Error(ErrorCode::invalid_input, where + ": the model file has no tokenizer; convert it again with --vocab "
                                                      "bpe_simple_vocab_16e6.txt.gz (or a Hugging Face vocab.json)");
    }
    if (texts.empty()) return Tensor::zeros_f32({0, config_->embed_dim});
    const std::vector<int32_t> ids = tokenizer_->context_batch(texts, config_->text.context);
    return encode_tokens(ids.data(), static_cast<int>(texts.size()));
}

Tensor ClipModel::load_images(const std::vector<std::filesystem::path>& paths, bool apply_exif_orientation) const {
    const int size = config_->preprocess.size;
    Tensor batch = Tensor::zeros_f32({static_cast<int64_t>(paths.size()), 3, size, size});
    Preprocessor preprocessor(preprocess_params(config_->preprocess));
    DecodeOptions options;
    options.apply_exif_orientation = apply_exif_orientation;
    for (size_t i = 0; i < paths.size(); ++i) {
        preprocessor.run(decode_image_file(paths[i], options), batch.f32() + static_cast<int64_t>(i) * 3 * size * size);
    }
    return batch;
}

std::string ClipModel::content_hash() const {
    if (!file_) throw Error(ErrorCode::internal, "a model built in memory has no content hash");
    if (file_->has("mclip.content_sha256")) return file_->get_string("mclip.content_sha256");
    return sha256_file_hex(file_->path());
}

void normalize_rows(Tensor& embeddings) {
    const int64_t rows = embeddings.dim(0);
    const int64_t width = embeddings.elements() / std::max<int64_t>(rows, 1);
    float* data = embeddings.f32();
    for (int64_t r = 0; r < rows; ++r) {
        double norm = 0;
        for (int64_t i = 0; i < width; ++i) norm += static_cast<double>(data[r * width + i]) * data[r * width + i];
        const float inv = static_cast<float>(1.0 / std::max(std::sqrt(norm), 1e-12));
        for (int64_t i = 0; i < width; ++i) data[r * width + i] *= inv;
    }
}

}  // namespace mclip
