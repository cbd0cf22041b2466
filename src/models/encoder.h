// The image and text encoders as the engine runs them: built once from inference-form weights
// (see each architecture's file for its tensor names), then run on batches.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kernels/kernels.h"
#include "models/config.h"
#include "models/weights.h"
#include "tensor/tensor.h"

namespace mclip {

// What the graphs are built with: the kernels and the precision of the big layers (convolutions
// and projections). In bf16 the temporaries that only feed those layers are stored in bf16; in
// int8 in the backend's int8 companion precision (bf16, or float32 where the backend has no bf16
// kernels: an int8 layer quantizes its input itself; the layers beside it run in the companion).
struct GraphOptions {
    kernels::Backend* backend = &kernels::default_backend();
    kernels::Precision precision = kernels::Precision::f32;
    DType narrow_type() const {
        const kernels::Precision narrow = precision == kernels::Precision::int8 ? backend->int8_companion() : precision;
        return narrow == kernels::Precision::f32 ? DType::f32 : DType::bf16;
    }
    // For the layers the whole signal passes through (stems, downsampling), as opposed to those
    // in residual branches: int8 models run them in the companion precision. Measured on the
    // fixtures: per-tensor int8 in the three MCi PatchEmbed 1×1 convolutions alone cost S0 5.5%
    // embedding error, and in the stem's 1×1 S1 1.8%, as much as all other layers together;
    // they are ~3% of the work.
    kernels::Precision main_path_precision() const {
        return precision == kernels::Precision::int8 ? backend->int8_companion() : precision;
    }
    // Depthwise convolutions are bound by memory traffic: float32 products unless int8 serves
    // them (kernels::int8_capable, compute_precision).
    kernels::Precision depthwise_precision() const {
        return precision == kernels::Precision::int8 ? kernels::Precision::int8 : kernels::Precision::f32;
    }
};

// Called with named intermediate activations (names and layouts as in the reference fixtures,
// e.g. "image.network.3" [n, C, H, W], "text.transformer.0"); the tensor covers the whole batch.
using ActivationHook = std::function<void(const std::string& name, const Tensor& value)>;

class ImageEncoder {
public:
    virtual ~ImageEncoder() = default;
    // images [n, 3, size, size] (preprocessed) → unnormalized embeddings [n, embed_dim].
    virtual Tensor encode(const Tensor& images, const ActivationHook& hook = {}) const = 0;
};

class TextEncoder {
public:
    virtual ~TextEncoder() = default;
    // tokens [n, context] int32 → unnormalized embeddings [n, embed_dim].
    virtual Tensor encode(const int32_t* tokens, int n, const ActivationHook& hook = {}) const = 0;
};

// Training form (reference checkpoint keys) → inference form (mclip's names), per architecture.
// Every tensor is checked against the config; errors name the tensor.
void fold_mci_image(const ModelConfig& config, const WeightSource& checkpoint, TensorMap& out);
void fold_vit_image(const ModelConfig& config, const WeightSource& checkpoint, TensorMap& out);
void fold_text(const ModelConfig& config, const WeightSource& checkpoint, TensorMap& out);
// The same from open_clip state dicts (config.layout == open_clip).
void fold_open_clip_vit_image(const ModelConfig& config, const WeightSource& checkpoint, TensorMap& out);
void fold_open_clip_text(const ModelConfig& config, const WeightSource& checkpoint, TensorMap& out);

std::unique_ptr<ImageEncoder> make_mci_image_encoder(const ModelConfig& config, const WeightSource& weights,
                                                     const GraphOptions& options);
std::unique_ptr<ImageEncoder> make_vit_image_encoder(const ModelConfig& config, const WeightSource& weights,
                                                     const GraphOptions& options);
std::unique_ptr<TextEncoder> make_text_encoder(const ModelConfig& config, const WeightSource& weights,
                                               const GraphOptions& options);

}  // namespace mclip
