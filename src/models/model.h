// ClipModel: a loaded MobileCLIP model, image and text encoders over one set of weights.
#pragma once

#include <filesystem>
#include <vector>
#include <memory>
#include <optional>
#include <string>

#include "io/gguf.h"
#include "kernels/kernels.h"
#include "models/calibration.h"
#include "models/config.h"
#include "models/encoder.h"
#include "tensor/tensor.h"
#include "tokenizer/tokenizer.h"

namespace mclip {

struct ModelLoadOptions {
    std::string backend = "auto";  // "auto", "reference", "onednn"
    int threads = 0;               // 0: one per core
    // Precision of the convolutions and projections; bf16 needs AVX512-BF16 or AMX with oneDNN,
    // int8 also AVX512-VNNI and a calibration.
    kernels::Precision precision = kernels::Precision::f32;
    // Overrides `precision` with the fastest that keeps the accuracy bounds (kernels.h) for this
    // model on this backend: int8 when the model is calibrated, else kernels::fastest_precision.
    bool fastest_precision = false;
    // The calibrated input ranges for int8; null means the model file's (calibration.h).
    const Calibration* calibration = nullptr;
};

class ClipModel {
public:
    // Maps a model file (GGUF) and builds both encoders from it.
    static std::unique_ptr<ClipModel> load(const std::filesystem::path& path, const ModelLoadOptions& options = {});
    // Builds the encoders from inference-form tensors (e.g. a checkpoint folded in memory).
    static std::unique_ptr<ClipModel> from_tensors(const ModelConfig& config, const TensorMap& tensors,
                                                   const ModelLoadOptions& options = {});

    const ModelConfig& config() const { return *config_; }
    // The file it was loaded from, if any.
    const GgufFile* file() const { return file_ ? &*file_ : nullptr; }
    // min(exp(logit_scale), 100), the factor applied to cosine similarities.
    float logit_scale() const { return logit_scale_; }
    std::string backend_name() const { return backend_name_; }
    kernels::Precision precision() const { return precision_; }

    // images [n, 3, size, size], preprocessed → [n, embed_dim], not normalized.
    Tensor encode_images(const Tensor& images, const ActivationHook& hook = {}) const;
    // tokens [n, context] → [n, embed_dim], not normalized.
    Tensor encode_tokens(const int32_t* tokens, int n, const ActivationHook& hook = {}) const;

    // The tokenizer embedded in the model file, or null when it has none.
    const Tokenizer* tokenizer() const { return tokenizer_ ? &*tokenizer_ : nullptr; }
    // Tokenizes and encodes; throws Error(invalid_input) when the model has no tokenizer.
    Tensor encode_texts(const std::vector<std::string>& texts) const;
    // Decodes image files and preprocesses them as this model's file says: [n, 3, size, size].
    // Errors name the file. EXIF orientation is applied unless told otherwise (the reference
    // preprocessing ignores it).
    Tensor load_images(const std::vector<std::filesystem::path>& paths, bool apply_exif_orientation = true) const;
    // An identity of the weights for caches: the file's stored content hash (or, for files
    // without one, the SHA-256 of the whole file).
    std::string content_hash() const;

private:
    ClipModel() = default;
    void build(const WeightSource& weights, float raw_logit_scale, const ModelLoadOptions& options);

    const ModelConfig* config_ = nullptr;
    std::optional<GgufFile> file_;
    std::unique_ptr<ImageEncoder> image_;
    std::unique_ptr<TextEncoder> text_;
    std::optional<Tokenizer> tokenizer_;
    float logit_scale_ = 1.0f;
    std::string backend_name_;
    kernels::Precision precision_ = kernels::Precision::f32;
};

// Scales each row of [rows, width] to unit L2 norm (v / max(‖v‖, 1e-12), as F.normalize).
void normalize_rows(Tensor& embeddings);

}  // namespace mclip
