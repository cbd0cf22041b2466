// ViT image encoders: MobileCLIP-B's (a three-conv stem, a CLS token, 12 pre-norm transformer
// layers and a projection of the CLS output; mobileclip-architecture.md §4) and CLIP's (one
// patch convolution, a positional row for the CLS token too, ln_pre, a projection).
//
// Inference-form tensor names (prefix "img."):
//   patch_emb.{0,1}       conv3 stem: 4×4/s4 (padding stem_padding) and 2×2/s2 convs with their BatchNorm folded in, GELU after
//   patch_emb.2           conv3 stem: 2×2/s2 conv to the model width
//   patch_emb.0           patch stem: patch×patch/s patch conv to the model width (bias 0 when the checkpoint has none)
//   pos_embed [T, width]  added to the patch tokens, T = (input / patch)², or [1 + T, width] added to
//                         CLS and the patches when class_position
//   cls_token [width]
//   pre_norm              LayerNorm after the positional embedding (pre_norm only)
//   transformer.K.*       pre-norm layers (blocks.h)
//   post_transformer_norm LayerNorm
//   classifier.proj       [width, embed_dim], stored [in, out]; classifier.bias [embed_dim] when head_bias
#include <vector>

#include "common/error.h"
#include "kernels/ops.h"
#include "models/blocks.h"
#include "models/encoder.h"

namespace mclip {
namespace {

const std::string kTrain = "image_encoder.model.";
const std::string kInfer = "img.";

int token_count(const ModelConfig& config) {
    const int side = config.image_size() / config.image.vit.patch;
    return side * side;
}

int position_rows(const ModelConfig& config) { return token_count(config) + (config.image.vit.class_position ? 1 : 0); }

TransformerShape layer_shape(const VitConfig& v) { return {v.width, v.heads, v.ffn, false, v.activation, v.norm_eps}; }

struct StemConv {
    int in, out, kernel, stride, pad;
};

std::vector<StemConv> stem_convs(const VitConfig& v) {
    if (v.stem == VitStem::patch) return {{3, v.width, v.patch, v.patch, 0}};
    // ml-mobileclip pads the first conv by (4 − 1) / 2 = 1, so patches start one pixel up and
    // left (§4); timm's vit_base_mci_224 (MobileCLIP2-B) does not pad.
    return {{3, v.stem_width, 4, 4, v.stem_padding}, {v.stem_width, v.stem_width, 2, 2, 0}, {v.stem_width, v.width, 2, 2, 0}};
}

}  // namespace

void fold_vit_image(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const VitConfig& v = config.image.vit;
    const auto stem = stem_convs(v);
    for (int i = 0; i < 3; ++i) {
        const std::string train = kTrain + "patch_emb." + std::to_string(i) + ".block";
        const std::string infer = kInfer + "patch_emb." + std::to_string(i);
        const Shape shape{stem[i].out, stem[i].in, stem[i].kernel, stem[i].kernel};
        if (i < 2) {
            put_conv(out, infer, fold_conv_batch_norm(ck.get(train + ".conv.weight", shape), read_batch_norm(ck, train + ".norm", stem[i].out)));
        } else {
            copy_tensor(ck, train + ".conv.weight", shape, out, infer + ".weight");
            copy_tensor(ck, train + ".conv.bias", {stem[i].out}, out, infer + ".bias");
        }
    }
    const int tokens = token_count(config);
    out[kInfer + "pos_embed"] = ck.get(kTrain + "pos_embed.pos_embed.pos_embed", {1, 1, tokens, v.width}).clone().reshaped({tokens, v.width});
    out[kInfer + "cls_token"] = ck.get(kTrain + "cls_token", {1, 1, v.width}).clone().reshaped({v.width});
    for (int l = 0; l < v.layers; ++l) {
        fold_transformer_layer(ck, kTrain + "transformer." + std::to_string(l), layer_shape(v), out,
                               kInfer + "transformer." + std::to_string(l));
    }
    copy_tensor(ck, kTrain + "post_transformer_norm.weight", {v.width}, out, kInfer + "post_transformer_norm.weight");
    copy_tensor(ck, kTrain + "post_transformer_norm.bias", {v.width}, out, kInfer + "post_transformer_norm.bias");
    copy_tensor(ck, kTrain + "classifier.proj", {v.width, config.embed_dim}, out, kInfer + "classifier.proj");
}

namespace {

// open_clip's own VisionTransformer (OpenAI CLIP): visual.conv1, class_embedding, ln_pre, ...
void fold_clip_vision_transformer(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const VitConfig& v = config.image.vit;
    if (v.stem != VitStem::patch || !v.class_position || !v.pre_norm || v.head_bias) {
        throw Error(ErrorCode::internal, config.name + ": not the configuration of open_clip's VisionTransformer");
    }
    const std::string train = "visual.";
    copy_tensor(ck, train + "conv1.weight", {v.width, 3, v.patch, v.patch}, out, kInfer + "patch_emb.0.weight");
    out[kInfer + "patch_emb.0.bias"] = Tensor::zeros_f32({v.width});
    copy_tensor(ck, train + "class_embedding", {v.width}, out, kInfer + "cls_token");
    copy_tensor(ck, train + "positional_embedding", {position_rows(config), v.width}, out, kInfer + "pos_embed");
    copy_tensor(ck, train + "ln_pre.weight", {v.width}, out, kInfer + "pre_norm.weight");
    copy_tensor(ck, train + "ln_pre.bias", {v.width}, out, kInfer + "pre_norm.bias");
    for (int l = 0; l < v.layers; ++l) {
        fold_transformer_layer(ck, TransformerNames::open_clip, train + "transformer.resblocks." + std::to_string(l), layer_shape(v), out,
                               kInfer + "transformer." + std::to_string(l));
    }
    copy_tensor(ck, train + "ln_post.weight", {v.width}, out, kInfer + "post_transformer_norm.weight");
    copy_tensor(ck, train + "ln_post.bias", {v.width}, out, kInfer + "post_transformer_norm.bias");
    copy_tensor(ck, train + "proj", {v.width, config.embed_dim}, out, kInfer + "classifier.proj");
}

// timm's VisionTransformer under visual.trunk (MobileCLIP2-B's vit_base_mci_224, MobileCLIP2-L-14's
// vit_large_patch14_clip_224): cls_token, pos_embed, patch_embed, norm_pre, blocks, norm, head.
void fold_timm_vision_transformer(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const VitConfig& v = config.image.vit;
    if (!v.head_bias) throw Error(ErrorCode::internal, config.name + ": timm's ViT head has a bias");
    const std::string train = "visual.trunk.";
    if (v.stem == VitStem::patch) {
        copy_tensor(ck, train + "patch_embed.proj.weight", {v.width, 3, v.patch, v.patch}, out, kInfer + "patch_emb.0.weight");
        out[kInfer + "patch_emb.0.bias"] = Tensor::zeros_f32({v.width});
    } else {
        const auto stem = stem_convs(v);
        for (int i = 0; i < 3; ++i) {
            const std::string from = train + "patch_embed.backbone." + std::to_string(i);
            const std::string to = kInfer + "patch_emb." + std::to_string(i);
            const Shape shape{stem[i].out, stem[i].in, stem[i].kernel, stem[i].kernel};
            if (i < 2) {
                put_conv(out, to, fold_conv_batch_norm(ck.get(from + ".conv.weight", shape), read_batch_norm(ck, from + ".bn", stem[i].out)));
            } else {
                copy_tensor(ck, from + ".conv.weight", shape, out, to + ".weight");
                copy_tensor(ck, from + ".conv.bias", {stem[i].out}, out, to + ".bias");
            }
        }
    }
    const int rows = position_rows(config);
    out[kInfer + "pos_embed"] = ck.get(train + "pos_embed", {1, rows, v.width}).clone().reshaped({rows, v.width});
    out[kInfer + "cls_token"] = ck.get(train + "cls_token", {1, 1, v.width}).clone().reshaped({v.width});
    if (v.pre_norm) {
        copy_tensor(ck, train + "norm_pre.weight", {v.width}, out, kInfer + "pre_norm.weight");
        copy_tensor(ck, train + "norm_pre.bias", {v.width}, out, kInfer + "pre_norm.bias");
    }
    for (int l = 0; l < v.layers; ++l) {
        fold_transformer_layer(ck, TransformerNames::timm, train + "blocks." + std::to_string(l), layer_shape(v), out,
                               kInfer + "transformer." + std::to_string(l));
    }
    copy_tensor(ck, train + "norm.weight", {v.width}, out, kInfer + "post_transformer_norm.weight");
    copy_tensor(ck, train + "norm.bias", {v.width}, out, kInfer + "post_transformer_norm.bias");
    // A Linear [E, W]; mclip stores projections [in, out].
    const Tensor head = ck.get(train + "head.weight", {config.embed_dim, v.width});
    Tensor proj = Tensor::zeros_f32({v.width, config.embed_dim});
    for (int e = 0; e < config.embed_dim; ++e) {
        for (int i = 0; i < v.width; ++i) proj.f32()[static_cast<int64_t>(i) * config.embed_dim + e] = head.f32()[static_cast<int64_t>(e) * v.width + i];
    }
    out[kInfer + "classifier.proj"] = proj;
    copy_tensor(ck, train + "head.bias", {config.embed_dim}, out, kInfer + "classifier.bias");
}

}  // namespace

void fold_open_clip_vit_image(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    // open_clip wraps timm image towers as visual.trunk; its own ViT sits directly under visual.
    if (ck.has("visual.trunk.pos_embed")) {
        fold_timm_vision_transformer(config, ck, out);
    } else {
        fold_clip_vision_transformer(config, ck, out);
    }
}

namespace {

// Workspace slots of the ViT graph: the stem's feature maps alternate between two buffers; the
// token sequence has its own.
enum : int { kStemA = kFirstEncoderSlot, kStemB, kSequence, kNormedRows };

class VitImageEncoder final : public ImageEncoder {
public:
    VitImageEncoder(const ModelConfig& config, const WeightSource& w, const GraphOptions& options)
        : config_(config), v_(config.image.vit), tokens_(token_count(config)) {
        const auto stem = stem_convs(v_);
        int size = config.image_size();
        for (size_t i = 0; i < stem.size(); ++i) {
            kernels::ConvDesc d;
            d.in_channels = stem[i].in;
            d.out_channels = stem[i].out;
            d.kernel_h = d.kernel_w = stem[i].kernel;
            d.stride_h = d.stride_w = stem[i].stride;
            d.pad_h = d.pad_w = stem[i].pad;
            d.activation = i + 1 < stem.size() ? kernels::Activation::gelu : kernels::Activation::none;
            d.precision = options.main_path_precision();
            d.typical_h = d.typical_w = size;
            size = d.output_h(size);
            const std::string name = kInfer + "patch_emb." + std::to_string(i);
            d.name = name;
            stem_.push_back(options.backend->make_conv2d(d, w.get(name + ".weight", {d.out_channels, d.in_channels, d.kernel_h, d.kernel_w}),
                                                         w.get(name + ".bias", {d.out_channels})));
        }
        pos_embed_ = w.get(kInfer + "pos_embed", {position_rows(config), v_.width});
        cls_token_ = w.get(kInfer + "cls_token", {v_.width});
        if (v_.pre_norm) pre_norm_ = LayerNormWeights(w, kInfer + "pre_norm", v_.width, v_.norm_eps);
        for (int l = 0; l < v_.layers; ++l) {
            layers_.push_back(std::make_unique<TransformerLayer>(w, kInfer + "transformer." + std::to_string(l), layer_shape(v_),
                                                                 options, tokens_ + 1));
        }
        final_norm_ = LayerNormWeights(w, kInfer + "post_transformer_norm", v_.width, v_.norm_eps);
        projection_ = w.get(kInfer + "classifier.proj", {v_.width, config.embed_dim});
        if (v_.head_bias) head_bias_ = w.get(kInfer + "classifier.bias", {config.embed_dim});
    }

    Tensor encode(const Tensor& images, const ActivationHook& hook) const override {
        const int size = config_.image_size();
        if (images.rank() != 4 || images.dim(1) != 3 || images.dim(2) != size || images.dim(3) != size) {
            // The reference interpolates the positional table for other sizes; mclip runs the trained size only.
            throw Error(ErrorCode::invalid_argument, config_.display_name + " takes [N, 3, " + std::to_string(size) + ", " + std::to_string(size) +
                                                         "] images, got " + shape_to_string(images.shape()));
        }
        const auto workspace = pool_.acquire();
        kernels::Workspace& ws = *workspace;
        const int n = static_cast<int>(images.dim(0));
        int h = size, w = size, c = 3, slot = kStemA;
        float* x = ws.floats(slot, static_cast<int64_t>(n) * c * h * w);
        kernels::nchw_to_nhwc(images.f32(), n, c, h, w, x);
        for (const auto& conv : stem_) {
            const auto& d = conv->desc();
            slot = slot == kStemA ? kStemB : kStemA;
            float* y = ws.floats(slot, static_cast<int64_t>(n) * d.out_channels * d.output_h(h) * d.output_w(w));
            conv->run(x, n, h, w, y);
            x = y;
            h = d.output_h(h);
            w = d.output_w(w);
            c = d.out_channels;
        }
        if (hook) {
            Tensor snapshot = Tensor::zeros_f32({n, c, h, w});
            kernels::nhwc_to_nchw(x, n, c, h, w, snapshot.f32());
            hook("image.patch_emb", snapshot);
        }
        if (h * w != tokens_) throw Error(ErrorCode::internal, "ViT stem produced an unexpected token count");

        // The NHWC stem output is already the patch token matrix [tokens, width]; CLS goes first.
        const int length = tokens_ + 1;
        const int width = v_.width;
        const int64_t rows = static_cast<int64_t>(n) * length;
        float* sequence = ws.floats(kSequence, rows * width);
        const float* patch_positions = pos_embed_.f32() + (v_.class_position ? width : 0);
        for (int b = 0; b < n; ++b) {
            float* seq = sequence + static_cast<int64_t>(b) * length * width;
            std::copy(cls_token_.f32(), cls_token_.f32() + width, seq);
            if (v_.class_position) kernels::add_inplace(seq, pos_embed_.f32(), width);
            const float* patches = x + static_cast<int64_t>(b) * tokens_ * width;
            for (int64_t i = 0; i < static_cast<int64_t>(tokens_) * width; ++i) seq[width + i] = patches[i] + patch_positions[i];
        }
        if (v_.pre_norm) pre_norm_.run(sequence, rows, sequence);
        for (size_t l = 0; l < layers_.size(); ++l) {
            layers_[l]->run(sequence, n, length, ws);
            if (hook) hook("image.transformer." + std::to_string(l), Tensor::from_f32({n, length, width}, {sequence, static_cast<size_t>(rows * width)}));
        }
        if (hook) {
            Tensor normed = Tensor::zeros_f32({n, length, width});
            final_norm_.run(sequence, rows, normed.f32());
            hook("image.post_transformer_norm", normed);
        }

        // The CLS row is all the head reads, and the final LayerNorm is per row.
        float* normed = ws.floats(kNormedRows, static_cast<int64_t>(n) * width);
        for (int b = 0; b < n; ++b) {
            final_norm_.run(sequence + static_cast<int64_t>(b) * length * width, 1, normed + static_cast<int64_t>(b) * width);
        }
        Tensor embeddings = Tensor::zeros_f32({n, config_.embed_dim});
        kernels::matmul_in_out(normed, n, width, projection_.f32(), config_.embed_dim, embeddings.f32());
        if (v_.head_bias) {
            for (int b = 0; b < n; ++b) kernels::add_inplace(embeddings.f32() + static_cast<int64_t>(b) * config_.embed_dim, head_bias_.f32(), config_.embed_dim);
        }
        return embeddings;
    }

private:
    ModelConfig config_;
    VitConfig v_;
    int tokens_;
    std::vector<std::unique_ptr<kernels::Conv2d>> stem_;
    Tensor pos_embed_, cls_token_, projection_, head_bias_;
    std::vector<std::unique_ptr<TransformerLayer>> layers_;
    LayerNormWeights pre_norm_, final_norm_;
    mutable kernels::WorkspacePool pool_;
};

}  // namespace

std::unique_ptr<ImageEncoder> make_vit_image_encoder(const ModelConfig& config, const WeightSource& weights,
                                                     const GraphOptions& options) {
    return std::make_unique<VitImageEncoder>(config, weights, options);
}

}  // namespace mclip
