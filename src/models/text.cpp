// Text encoders: `base` (12 pre-norm transformer layers; S1, S2, B) and `mct` (S0: a RepMixer
// block, 4 transformer layers, a RepMixer block), then final LayerNorm, EOT pooling and a
// projection. mobileclip-architecture.md §5.
//
// Inference-form tensor names (prefix "txt."):
//   token_embedding [vocab, width]          positional_embedding [context, width]
//   transformer.K.* (blocks.h)              transformer layers (mct: K = 1..4)
//   transformer.{0,5}.token_mixer           mct RepMixer: one 1×11 depthwise conv, residual inside
//   transformer.{0,5}.ffn.{dw,fc1,fc2}      mct ConvFFN (BN folded into dw, layer scale into fc2)
//   final_layer_norm                        projection [width, embed_dim], stored [in, out]
#include <algorithm>
#include <vector>

#include "common/error.h"
#include "kernels/ops.h"
#include "models/blocks.h"
#include "models/encoder.h"

namespace mclip {
namespace {

const std::string kTrain = "text_encoder.";
const std::string kInfer = "txt.";

// Module indices of the stack: mct wraps its transformer layers in two RepMixer blocks.
int module_count(const TextEncoderConfig& t) { return t.kind == TextEncoderKind::mct ? t.layers + 2 : t.layers; }
bool is_repmixer(const TextEncoderConfig& t, int index) {
    return t.kind == TextEncoderKind::mct && (index == 0 || index == t.layers + 1);
}

TransformerShape layer_shape(const TextEncoderConfig& t) { return {t.width, t.heads, t.ffn, t.causal, t.activation}; }
ConvFfnShape ffn_shape(const TextEncoderConfig& t) { return {t.width, t.ffn, 1, t.mixer_kernel}; }

}  // namespace

void fold_text(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const TextEncoderConfig& t = config.text;
    copy_tensor(ck, kTrain + "embedding_layer.weight", {t.vocab, t.width}, out, kInfer + "token_embedding");
    out[kInfer + "positional_embedding"] =
        ck.get(kTrain + "positional_embedding.pos_embed.pos_embed", {1, 1, t.context, t.width}).clone().reshaped({t.context, t.width});
    for (int i = 0; i < module_count(t); ++i) {
        const std::string train = kTrain + "transformer." + std::to_string(i);
        const std::string infer = kInfer + "transformer." + std::to_string(i);
        if (!is_repmixer(t, i)) {
            fold_transformer_layer(ck, train, layer_shape(t), out, infer);
            continue;
        }
        // 1-D RepMixer over the sequence (a [C, 1, L] image): X + ℓ ⊙ (mixer(X) − norm(X)) folds to
        // one depthwise 1×k conv with kernel I + ℓ(W_m − W_n); its mixer has no 1×1 scale branch.
        const int c = t.width, k = t.mixer_kernel;
        const std::string mixer = train + ".token_mixer";
        if (ck.has(mixer + ".reparam_conv.weight")) {
            copy_tensor(ck, mixer + ".reparam_conv.weight", {c, 1, 1, k}, out, infer + ".token_mixer.weight");
            copy_tensor(ck, mixer + ".reparam_conv.bias", {c}, out, infer + ".token_mixer.bias");
        } else {
            FoldedConv mixed = fold_mobileone(ck, mixer + ".mixer", {c, c, 1, k, c, false, true});
            const FoldedConv norm = fold_mobileone(ck, mixer + ".norm", {c, c, 1, k, c, false, true, 0});
            for (int64_t j = 0; j < mixed.weight.elements(); ++j) mixed.weight.f32()[j] -= norm.weight.f32()[j];
            for (int j = 0; j < c; ++j) mixed.bias.f32()[j] -= norm.bias.f32()[j];
            scale_folded(mixed, read_channel_vector(ck, mixer + ".layer_scale", c));
            add_folded(mixed, {identity_kernel(c, 1, 1, k), Tensor::zeros_f32({c})});
            put_conv(out, infer + ".token_mixer", mixed);
        }
        fold_conv_ffn(ck, train, train + ".layer_scale", ffn_shape(t), out, infer + ".ffn");
    }
    copy_tensor(ck, kTrain + "final_layer_norm.weight", {t.width}, out, kInfer + "final_layer_norm.weight");
    copy_tensor(ck, kTrain + "final_layer_norm.bias", {t.width}, out, kInfer + "final_layer_norm.bias");
    copy_tensor(ck, kTrain + "projection_layer", {t.width, config.embed_dim}, out, kInfer + "projection");
}

void fold_open_clip_text(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const TextEncoderConfig& t = config.text;
    if (t.kind != TextEncoderKind::base) throw Error(ErrorCode::internal, config.name + ": open_clip text towers are plain transformers");
    // CLIP keeps the text tower at the root of the state dict; CustomTextCLIP (MobileCLIP2) under text.
    const std::string root = ck.has("text.token_embedding.weight") ? "text." : "";
    copy_tensor(ck, root + "token_embedding.weight", {t.vocab, t.width}, out, kInfer + "token_embedding");
    copy_tensor(ck, root + "positional_embedding", {t.context, t.width}, out, kInfer + "positional_embedding");
    for (int i = 0; i < t.layers; ++i) {
        fold_transformer_layer(ck, TransformerNames::open_clip, root + "transformer.resblocks." + std::to_string(i), layer_shape(t), out,
                               kInfer + "transformer." + std::to_string(i));
    }
    copy_tensor(ck, root + "ln_final.weight", {t.width}, out, kInfer + "final_layer_norm.weight");
    copy_tensor(ck, root + "ln_final.bias", {t.width}, out, kInfer + "final_layer_norm.bias");
    // Used as x · P, already [in, out] like mclip's projection.
    copy_tensor(ck, root + "text_projection", {t.width, config.embed_dim}, out, kInfer + "projection");
}

namespace {

// Workspace slots of the text graph: the sequence alternates between two buffers around the
// RepMixer convolutions; the pooled rows are gathered before the final LayerNorm.
enum : int { kSequenceA = kFirstEncoderSlot, kSequenceB, kPooledRows, kNormedRows };

class ClipTextEncoder final : public TextEncoder {
public:
    ClipTextEncoder(const ModelConfig& config, const WeightSource& w, const GraphOptions& options)
        : config_(config), t_(config.text) {
        token_embedding_ = w.get(kInfer + "token_embedding", {t_.vocab, t_.width});
        positional_embedding_ = w.get(kInfer + "positional_embedding", {t_.context, t_.width});
        for (int i = 0; i < module_count(t_); ++i) {
            const std::string name = kInfer + "transformer." + std::to_string(i);
            Module m;
            if (is_repmixer(t_, i)) {
                // The sequence [L, C] is an NHWC image of height 1: a 1×k depthwise conv mixes positions.
                kernels::ConvDesc d;
                d.in_channels = d.out_channels = d.groups = t_.width;
                d.kernel_h = 1;
                d.kernel_w = t_.mixer_kernel;
                d.pad_w = t_.mixer_kernel / 2;
                d.typical_h = 1;
                d.typical_w = t_.context;
                d.name = name + ".token_mixer";
                m.mixer = options.backend->make_conv2d(d, w.get(name + ".token_mixer.weight", {t_.width, 1, 1, t_.mixer_kernel}),
                                                       w.get(name + ".token_mixer.bias", {t_.width}));
                m.ffn = std::make_unique<ConvFfn>(w, name + ".ffn", ffn_shape(t_), options, 1, t_.context);
            } else {
                m.layer = std::make_unique<TransformerLayer>(w, name, layer_shape(t_), options, t_.context);
            }
            modules_.push_back(std::move(m));
        }
        final_norm_ = LayerNormWeights(w, kInfer + "final_layer_norm", t_.width);
        projection_ = w.get(kInfer + "projection", {t_.width, config.embed_dim});
    }

    Tensor encode(const int32_t* tokens, int n, const ActivationHook& hook) const override {
        const int length = t_.context, width = t_.width;
        for (int64_t i = 0; i < static_cast<int64_t>(n) * length; ++i) {
            if (tokens[i] < 0 || tokens[i] >= t_.vocab) {
                throw Error(ErrorCode::invalid_argument, "token id " + std::to_string(tokens[i]) + " at sequence " +
                                                             std::to_string(i / length) + ", position " + std::to_string(i % length) +
                                                             " is outside the vocabulary [0, " + std::to_string(t_.vocab) + ")");
            }
        }
        // Pool at the end-of-text token, the position of the largest id (first one on ties).
        std::vector<int> eot(n);
        for (int b = 0; b < n; ++b) {
            const int32_t* seq = tokens + static_cast<int64_t>(b) * length;
            eot[b] = static_cast<int>(std::max_element(seq, seq + length) - seq);
        }
        // Under a causal mask no position sees a later one, so positions after the batch's last
        // EOT cannot change the pooled rows and are not computed (rounded up to a multiple of 8
        // to bound the number of distinct shapes the kernels prepare for). The hook sees all.
        int steps = length;
        if (t_.causal && !hook && n > 0) steps = std::min(length, (*std::max_element(eot.begin(), eot.end()) + 1 + 7) / 8 * 8);
        const int64_t rows = static_cast<int64_t>(n) * steps;

        const auto workspace = pool_.acquire();
        kernels::Workspace& ws = *workspace;
        float* x = ws.floats(kSequenceA, rows * width);
        float* other = ws.floats(kSequenceB, rows * width);
        for (int b = 0; b < n; ++b) {
            for (int i = 0; i < steps; ++i) {
                const int32_t id = tokens[static_cast<int64_t>(b) * length + i];
                std::copy_n(token_embedding_.f32() + static_cast<int64_t>(id) * width, width, x + (static_cast<int64_t>(b) * steps + i) * width);
            }
        }
        const auto whole = [&](const float* values) { return Tensor::from_f32({n, steps, width}, {values, static_cast<size_t>(rows * width)}); };
        if (hook) hook("text.token_embedding", whole(x));
        for (int64_t r = 0; r < rows; ++r) {
            kernels::add_inplace(x + r * width, positional_embedding_.f32() + (r % steps) * width, width);
        }
        for (size_t m = 0; m < modules_.size(); ++m) {
            if (modules_[m].layer) {
                modules_[m].layer->run(x, n, steps, ws);
            } else {
                modules_[m].mixer->run(x, n, 1, steps, other);
                modules_[m].ffn->add_to(other, n, 1, steps, ws);
                std::swap(x, other);
            }
            if (hook) hook("text.transformer." + std::to_string(m), whole(x));
        }
        if (hook) {
            Tensor normed = Tensor::zeros_f32({n, steps, width});
            final_norm_.run(x, rows, normed.f32());
            hook("text.final_layer_norm", normed);
        }

        // The final LayerNorm is per row, so only the pooled rows need it.
        float* pooled = ws.floats(kPooledRows, static_cast<int64_t>(n) * width);
        float* normed = ws.floats(kNormedRows, static_cast<int64_t>(n) * width);
        for (int b = 0; b < n; ++b) {
            std::copy_n(x + (static_cast<int64_t>(b) * steps + eot[b]) * width, width, pooled + static_cast<int64_t>(b) * width);
        }
        final_norm_.run(pooled, n, normed);
        Tensor embeddings = Tensor::zeros_f32({n, config_.embed_dim});
        kernels::matmul_in_out(normed, n, width, projection_.f32(), config_.embed_dim, embeddings.f32());
        return embeddings;
    }

private:
    struct Module {
        std::unique_ptr<TransformerLayer> layer;
        std::unique_ptr<kernels::Conv2d> mixer;
        std::unique_ptr<ConvFfn> ffn;
    };

    ModelConfig config_;
    TextEncoderConfig t_;
    Tensor token_embedding_, positional_embedding_, projection_;
    std::vector<Module> modules_;
    LayerNormWeights final_norm_;
    mutable kernels::WorkspacePool pool_;
};

}  // namespace

std::unique_ptr<TextEncoder> make_text_encoder(const ModelConfig& config, const WeightSource& weights, const GraphOptions& options) {
    return std::make_unique<ClipTextEncoder>(config, weights, options);
}

}  // namespace mclip
