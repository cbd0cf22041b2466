// ClipModel: a loaded MobileCLIP model, image and text encoders over one set of weights.
#pragma once

#include <filesystem>
#include <vector>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "io/gguf.h"
#include "kernels/kernels.h"
#include "models/calibration.h"
#include "models/config.h"
#include "models/encoder.h"
#include "tensor/tensor.h"
#include "mclip/tokenizer.h"

namespace mclip {

struct ModelLoadOptions {
    std::string backend = "auto";  // "auto", "reference", "onednn"
    int threads = 0;               // threads per call; 0: $OMP_NUM_THREADS when set, else one per core (resolved at load)
    // Precision of the convolutions and projections; bf16 needs AVX512-BF16 or AMX with oneDNN,
    // int8 AVX2 or newer and a calibration (its other layers run bf16 where that is faster than
    // float32, else float32: kernels::Backend::int8_companion).
    kernels::Precision precision = kernels::Precision::f32;
    // Overrides `precision` with the fastest that keeps the accuracy bounds (kernels.h) for this
    // model on this backend: int8 when the model is calibrated, else kernels::fastest_precision.
    bool fastest_precision = false;
    // The calibrated input ranges for int8; null means the model file's (calibration.h).
    const Calibration* calibration = nullptr;
};

// Threads: a model runs its kernels with its own thread count (ModelLoadOptions::threads),
// applied on whichever thread calls it for the duration of the call; models with different
// counts can live in one process.
//
// Concurrency: every method is safe to call from several threads at once. Each call takes its
// own activation buffers, so concurrent calls on one model run in parallel, each with the
// model's thread count (k callers use up to k × threads() cores); for a fixed budget of cores,
// give each caller a model with its share of them.
//
// Cold start: loading reads the metadata and checks every tensor's name and shape against the
// config, but builds an encoder (converting and packing its weights for the kernels) only when
// it is first used, and the tokenizer likewise: a call that needs only the image encoder never
// pays for the text encoder.
class ClipModel {
public:
    // Maps a model file (GGUF) and checks it; errors name the file and what is wrong with it.
    static std::unique_ptr<ClipModel> load(const std::filesystem::path& path, const ModelLoadOptions& options = {});
    // Encoders over inference-form tensors (e.g. a checkpoint folded in memory); the tensors are
    // shared, not copied.
    static std::unique_ptr<ClipModel> from_tensors(const ModelConfig& config, const TensorMap& tensors,
                                                   const ModelLoadOptions& options = {});
    ~ClipModel();

    // The architecture and preprocessing, as the model file says (or as given to from_tensors).
    const ModelConfig& config() const { return config_; }
    // The file it was loaded from, if any.
    const GgufFile* file() const { return file_ ? &*file_ : nullptr; }
    // min(exp(logit_scale), 100), the factor applied to cosine similarities.
    float logit_scale() const { return logit_scale_; }
    std::string backend_name() const { return backend_->name(); }
    kernels::Precision precision() const { return precision_; }
    // The thread count every call runs with (ModelLoadOptions::threads, 0 resolved to the cores).
    int threads() const { return threads_; }

    // images [n, 3, size, size], preprocessed → [n, embed_dim], not normalized.
    Tensor encode_images(const Tensor& images, const ActivationHook& hook = {}) const;
    // tokens [n, context] → [n, embed_dim], not normalized.
    Tensor encode_tokens(const int32_t* tokens, int n, const ActivationHook& hook = {}) const;
    // Builds the encoders now rather than at their first use (to take the time out of a first
    // call that is timed, or before serving).
    void prepare_image_encoder() const;
    void prepare_text_encoder() const;

    // Whether the model file embeds a tokenizer (without building it).
    bool has_tokenizer() const { return has_tokenizer_; }
    // Whether the file holds each encoder (a file imported from one Core ML package holds one).
    bool has_image_encoder() const { return has_image_; }
    bool has_text_encoder() const { return has_text_; }
    // The tokenizer embedded in the model file, or null when it has none.
    const Tokenizer* tokenizer() const;
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
    // Picks the backend, precision and thread count, and checks them against the CPU and the
    // calibration.
    void configure(const ModelLoadOptions& options);
    WeightSource weights() const;
    const ImageEncoder& image_encoder() const;
    const TextEncoder& text_encoder() const;
    // Builds an encoder with `make` from this model's weights, kernels and precision.
    template <typename Encoder, typename Make>
    std::unique_ptr<Encoder> build(const char* what, Make make) const;

    ModelConfig config_;
    std::optional<GgufFile> file_;
    TensorMap tensors_;  // from_tensors: the weights
    kernels::Backend* backend_ = nullptr;
    kernels::Precision precision_ = kernels::Precision::f32;
    std::optional<Calibration> calibration_;
    int threads_ = 1;
    float logit_scale_ = 1.0f;
    bool has_tokenizer_ = false;
    bool has_image_ = true, has_text_ = true;

    // Built on first use, once (call_once retries after a build that threw).
    mutable std::once_flag image_built_, text_built_, tokenizer_built_;
    mutable std::unique_ptr<ImageEncoder> image_;
    mutable std::unique_ptr<TextEncoder> text_;
    mutable std::optional<Tokenizer> tokenizer_;
};

// Scales each row of [rows, width] to unit L2 norm (v / max(‖v‖, 1e-12), as F.normalize).
void normalize_rows(Tensor& embeddings);

}  // namespace mclip
