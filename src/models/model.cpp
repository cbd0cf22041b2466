#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include <omp.h>

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
    std::string message = std::string(what) + ": " + std::to_string(calibrated.int8_layers()) + " of " + std::to_string(calibrated.layers()) +
                          " layers run int8 (calibrated on " + calibration_->source + "), the rest " +
                          kernels::to_string(backend_->int8_companion());
    if (calibrated.fused_layers() > 0) message += " (" + std::to_string(calibrated.fused_layers()) + " calibrated ones in fused bf16 FFNs, faster here)";
    if (calibrated.declined_layers() > 0) {
        message += "; " + std::to_string(calibrated.declined_layers()) + " calibrated depthwise ones float32 (no int8 depthwise kernel for this CPU)";
    }
    log_info(message);
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

namespace {

// The widest activation one row of a batch passes through, in values: an MCi image's first
// ConvFFN hidden layer, a ViT's or the text transformer's MLP hidden layer.
int64_t widest_activation(const ModelConfig& config, bool image) {
    if (!image) return int64_t{config.text.context} * config.text.ffn;
    const int64_t size = config.image_size();
    if (config.image.kind == ImageEncoderKind::mci) {
        const MciConfig& m = config.image.mci;
        return (size / 4) * (size / 4) * m.mlp_ratio * m.widths[0];
    }
    const int64_t side = size / config.image.vit.patch;
    return (side * side + 1) * config.image.vit.ffn;
}

// How many rows one thread encodes per call when a batch is split: as many as keep the widest
// activation within about 2 M values (4 MB in bf16). Measured on two cores of the AMX Xeon
// (int8, batch 8): S0 and S2 images fastest 2 at a time, ViT-B/32 images and S0 prompts 4–16
// (1 at a time: 30% and 40% slower); all of a thread's share in one call was 15–25% slower
// at batch 32 and 100.
int rows_per_call(const ModelConfig& config, bool image) {
    constexpr int64_t cached_values = int64_t{2} << 20;
    return static_cast<int>(std::clamp<int64_t>(cached_values / widest_activation(config, image), 1, 64));
}

// The rows of float32 matrices [k, dim], one under another.
Tensor stack_rows(const std::vector<Tensor>& parts) {
    if (parts.size() == 1) return parts.front();
    int64_t rows = 0;
    for (const Tensor& part : parts) rows += part.dim(0);
    Tensor stacked = Tensor::zeros_f32({rows, parts.front().dim(1)});
    float* to = stacked.f32();
    for (const Tensor& part : parts) to = std::copy_n(part.f32(), part.elements(), to);
    return stacked;
}

// Encodes rows [0, n) with `encode(start, count)` (a Tensor [count, dim]). A batch of several
// rows is split between the threads, each encoding its share alone on one thread, where rows
// one after another would have every thread work on each layer in turn: a layer of one image is
// too small to keep several cores busy (on two cores of the AMX Xeon a quarter of the time went
// to waiting at the barriers of oneDNN's and mclip's parallel loops), and whole rows in parallel
// need no synchronization. Rows computed apart agree with rows computed together to float32
// rounding (oneDNN picks its blocking by batch size and thread count), except that in bf16 some
// kernels round differently on one thread and on several: S0's text embeddings by 1e-3.
template <typename Encode>
Tensor encode_split(int n, int threads, int rows_per_call, Encode encode) {
    const int parts = std::min(n, threads);
    if (parts < 2) return encode(0, n);
    std::vector<Tensor> results(parts);
    std::vector<std::exception_ptr> errors(parts);
#pragma omp parallel num_threads(parts)
    {
        const kernels::ThreadCountScope alone(1);
        // OpenMP may give fewer threads than asked (inside another parallel region, say): the
        // threads it gives take the parts in turn.
        for (int part = omp_get_thread_num(); part < parts; part += omp_get_num_threads()) {
            const int start = static_cast<int>(static_cast<int64_t>(n) * part / parts);
            const int end = static_cast<int>(static_cast<int64_t>(n) * (part + 1) / parts);
            try {
                std::vector<Tensor> pieces;
                for (int row = start; row < end; row += rows_per_call) pieces.push_back(encode(row, std::min(rows_per_call, end - row)));
                results[part] = stack_rows(pieces);
            } catch (...) {
                errors[part] = std::current_exception();
            }
        }
    }
    for (const std::exception_ptr& error : errors) {
        if (error) std::rethrow_exception(error);
    }
    return stack_rows(results);
}

}  // namespace

Tensor ClipModel::encode_images(const Tensor& images, const ActivationHook& hook) const {
    const int size = config_.image_size();
    if (images.dtype() != DType::f32 || images.rank() != 4 || images.dim(1) != 3 || images.dim(2) != size ||
        images.dim(3) != size) {
        throw Error(ErrorCode::invalid_argument, config_.display_name + " takes float32 images [N, 3, " + std::to_string(size) +
                                                     ", " + std::to_string(size) + "], got " + to_string(images.dtype()) + " " +
                                                     shape_to_string(images.shape()));
    }
    const kernels::ThreadCountScope threads(threads_);
    const ImageEncoder& encoder = image_encoder();
    if (hook) return encoder.encode(images, hook);
    const int64_t image_values = int64_t{3} * size * size;
    return encode_split(static_cast<int>(images.dim(0)), threads_, rows_per_call(config_, true), [&](int start, int count) {
        if (count == images.dim(0)) return encoder.encode(images);  // the whole batch: no copy
        const float* first = images.f32() + start * image_values;
        return encoder.encode(Tensor::from_f32({count, 3, size, size}, {first, static_cast<size_t>(count * image_values)}));
    });
}

Tensor ClipModel::encode_tokens(const int32_t* tokens, int n, const ActivationHook& hook) const {
    const kernels::ThreadCountScope threads(threads_);
    const TextEncoder& encoder = text_encoder();
    if (hook) return encoder.encode(tokens, n, hook);
    return encode_split(n, threads_, rows_per_call(config_, false), [&](int start, int count) {
        return encoder.encode(tokens + static_cast<int64_t>(start) * config_.text.context, count);
    });
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
