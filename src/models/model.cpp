#include "models/model.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/log.h"
#include "mclip/image.h"
#include "mclip/preprocess.h"
#include "io/sha256.h"
#include "models/model_file.h"

namespace mclip {

namespace {

// Layers of a graph built only to check a model file (WeightSource::shapes_of_gguf): they hold
// no weights and cannot run.
[[noreturn]] void not_runnable() { throw Error(ErrorCode::internal, "a layer built for checking was run"); }

class CheckedConv2d final : public kernels::Conv2d {
public:
    using Conv2d::Conv2d;

protected:
    void execute(const void*, int, int, int, void*) const override { not_runnable(); }
};

class CheckedLinear final : public kernels::Linear {
public:
    using Linear::Linear;

protected:
    void execute(const void*, int, void*) const override { not_runnable(); }
};

class CheckedAttention final : public kernels::Attention {
public:
    using Attention::Attention;

protected:
    void execute(const void*, int, int, void*) const override { not_runnable(); }
};

// The graphs' own shape checks (WeightSource::get) are the check; the layers are placeholders.
class CheckingBackend final : public kernels::Backend {
public:
    std::string name() const override { return "check"; }
    bool native(kernels::Precision) const override { return true; }
    std::unique_ptr<kernels::Conv2d> make_conv2d(const kernels::ConvDesc& desc, const Tensor&, const Tensor&) override {
        return std::make_unique<CheckedConv2d>(desc);
    }
    std::unique_ptr<kernels::Linear> make_linear(const kernels::LinearDesc& desc, const Tensor&, const Tensor&) override {
        return std::make_unique<CheckedLinear>(desc);
    }
    std::unique_ptr<kernels::Attention> make_attention(const kernels::AttentionDesc& desc) override {
        return std::make_unique<CheckedAttention>(desc);
    }
};

std::unique_ptr<ImageEncoder> make_image_encoder(const ModelConfig& config, const WeightSource& weights, const GraphOptions& options) {
    return config.image.kind == ImageEncoderKind::mci ? make_mci_image_encoder(config, weights, options)
                                                      : make_vit_image_encoder(config, weights, options);
}

}  // namespace

ClipModel::~ClipModel() = default;

std::unique_ptr<ClipModel> ClipModel::load(const std::filesystem::path& path, const ModelLoadOptions& options) {
    std::unique_ptr<ClipModel> model(new ClipModel());
    model->file_ = GgufFile::open(path);
    model->config_ = model_file_config(*model->file_);
    // Every tensor the graphs will read, checked against the config now: a file whose metadata
    // contradicts its tensors fails here, not at its first use.
    CheckingBackend checking;
    const WeightSource shapes = WeightSource::shapes_of_gguf(*model->file_);
    auto holds = [&](const char* prefix) {
        const auto& tensors = model->file_->tensors();
        return std::any_of(tensors.begin(), tensors.end(), [&](const GgufTensorInfo& t) { return t.name.rfind(prefix, 0) == 0; });
    };
    model->has_image_ = holds("img.");
    model->has_text_ = holds("txt.");
    if (!model->has_image_ && !model->has_text_) throw Error(ErrorCode::invalid_input, path.string() + ": the model file holds neither encoder");
    if (model->has_image_) make_image_encoder(model->config_, shapes, {&checking, kernels::Precision::f32});
    if (model->has_text_) make_text_encoder(model->config_, shapes, {&checking, kernels::Precision::f32});
    model->has_tokenizer_ = mclip::has_tokenizer(*model->file_);
    model->calibration_ = options.calibration ? std::optional(*options.calibration) : read_calibration(*model->file_);
    model->configure(options);
    // The reference clamps exp(logit_scale) at 100 (CLIP's training-time clamp).
    model->logit_scale_ = std::min(std::exp(static_cast<float>(model->file_->get_float("mclip.logit_scale"))), 100.0f);
    return model;
}

std::unique_ptr<ClipModel> ClipModel::from_tensors(const ModelConfig& config, const TensorMap& tensors,
                                                   const ModelLoadOptions& options) {
    std::unique_ptr<ClipModel> model(new ClipModel());
    model->config_ = config;
    model->tensors_ = tensors;
    if (options.calibration) model->calibration_ = *options.calibration;
    model->configure(options);
    model->logit_scale_ = std::min(std::exp(model->weights().get("logit_scale", {}).f32()[0]), 100.0f);
    return model;
}

void ClipModel::configure(const ModelLoadOptions& options) {
    threads_ = kernels::resolve_thread_count(options.threads);
    backend_ = &kernels::backend_by_name(options.backend);
    precision_ = options.precision;
    if (options.fastest_precision) {
        precision_ = calibration_ && backend_->native(kernels::Precision::int8) ? kernels::Precision::int8
                                                                                : kernels::fastest_precision(*backend_);
    }
    if (!backend_->native(precision_) && backend_->name() != "reference") {
        throw Error(ErrorCode::unsupported, std::string(kernels::to_string(precision_)) + " precision needs a CPU with " +
                                                (precision_ == kernels::Precision::int8 ? "AVX2 or newer" : "AVX512-BF16 or AMX") +
                                                "; use --precision f32");
    }
    if (precision_ == kernels::Precision::int8 && !calibration_) {
        const std::string where = file_ ? file_->path() : config_.name;
        throw Error(ErrorCode::invalid_input, where + " has no int8 calibration: convert it again with --calibrate FOLDER "
                                                      "(typical images), or use --precision bf16");
    }
}

WeightSource ClipModel::weights() const {
    return file_ ? WeightSource::from_gguf(*file_) : WeightSource::from_map(tensors_, config_.name);
}

template <typename Encoder, typename Make>
std::unique_ptr<Encoder> ClipModel::build(const char* what, Make make) const {
    // Under the model's thread count: oneDNN sizes a primitive's team when it creates it.
    const kernels::ThreadCountScope threads(threads_);
    const WeightSource weights = this->weights();
    if (precision_ != kernels::Precision::int8) return make(config_, weights, GraphOptions{backend_, precision_});
    // int8 layers take their input ranges from the calibration; the backend fills them in.
    CalibratedBackend calibrated(*backend_, *calibration_);
    std::unique_ptr<Encoder> encoder = make(config_, weights, GraphOptions{&calibrated, precision_});
    log_info(std::string(what) + ": " + std::to_string(calibrated.int8_layers()) + " of " + std::to_string(calibrated.layers()) +
             " layers run int8 (calibrated on " + calibration_->source + "), the rest bf16");
    return encoder;
}

const ImageEncoder& ClipModel::image_encoder() const {
    if (!has_image_) throw Error(ErrorCode::unsupported, (file_ ? file_->path() : config_.name) + ": the model file holds only the text encoder");
    std::call_once(image_built_, [this] { image_ = build<ImageEncoder>("image encoder", make_image_encoder); });
    return *image_;
}

const TextEncoder& ClipModel::text_encoder() const {
    if (!has_text_) {
        throw Error(ErrorCode::unsupported, (file_ ? file_->path() : config_.name) +
                                                ": the model file holds only the image encoder; text (and classify, which needs both) "
                                                "needs a file with both encoders");
    }
    std::call_once(text_built_, [this] { text_ = build<TextEncoder>("text encoder", make_text_encoder); });
    return *text_;
}

void ClipModel::prepare_image_encoder() const { image_encoder(); }
void ClipModel::prepare_text_encoder() const { text_encoder(); }

const Tokenizer* ClipModel::tokenizer() const {
    if (!has_tokenizer_) return nullptr;
    std::call_once(tokenizer_built_, [this] { tokenizer_ = load_tokenizer(*file_); });
    return &*tokenizer_;
}

Tensor ClipModel::encode_images(const Tensor& images, const ActivationHook& hook) const {
    const int size = config_.image_size();
    if (images.dtype() != DType::f32 || images.rank() != 4 || images.dim(1) != 3 || images.dim(2) != size ||
        images.dim(3) != size) {
        throw Error(ErrorCode::invalid_argument, config_.display_name + " takes float32 images [N, 3, " + std::to_string(size) +
                                                     ", " + std::to_string(size) + "], got " + to_string(images.dtype()) + " " +
                                                     shape_to_string(images.shape()));
    }
    const kernels::ThreadCountScope threads(threads_);
    return image_encoder().encode(images, hook);
}

Tensor ClipModel::encode_tokens(const int32_t* tokens, int n, const ActivationHook& hook) const {
    const kernels::ThreadCountScope threads(threads_);
    return text_encoder().encode(tokens, n, hook);
}

Tensor ClipModel::encode_texts(const std::vector<std::string>& texts) const {
    const Tokenizer* tokenizer = this->tokenizer();
    if (!tokenizer) {
        const std::string where = file_ ? file_->path() : config_.name;
        throw Error(ErrorCode::invalid_input, where + ": the model file has no tokenizer; convert it again with --vocab "
                                                      "bpe_simple_vocab_16e6.txt.gz (or a Hugging Face vocab.json)");
    }
    if (texts.empty()) return Tensor::zeros_f32({0, config_.embed_dim});
    const std::vector<int32_t> ids = tokenizer->context_batch(texts, config_.text.context);
    return encode_tokens(ids.data(), static_cast<int>(texts.size()));
}

Tensor ClipModel::load_images(const std::vector<std::filesystem::path>& paths, bool apply_exif_orientation) const {
    const int size = config_.preprocess.size;
    Tensor batch = Tensor::zeros_f32({static_cast<int64_t>(paths.size()), 3, size, size});
    Preprocessor preprocessor(config_.preprocess);
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
