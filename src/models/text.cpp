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

TransformerShape layer_shape(const TextEncoderConfig& t) { return {t.width, t.heads, t.ffn, t.causal}; }
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

namespace {

class ClipTextEncoder final : public TextEncoder {
public:
    ClipTextEncoder(const ModelConfig& config, const WeightSource& w, kernels::Backend& backend)
        : config_(config), t_(config.text) {
        token_embedding_ = w.get(kInfer + "token_embedding", {t_.vocab, t_.width});
        positional_embedding_ = w.get(kInfer + "positional_embedding", {t_.context, t_.width});
        for (int i = 0; i < module_count(t_); ++i) {
            const std::string name = kInfer + "transformer." + std::to_string(i);
            Module m;
            if (is_repmixer(t_, i)) {
                kernels::ConvDesc d;
                d.in_channels = d.out_channels = d.groups = t_.width;
                d.kernel_h = 1;
                d.kernel_w = t_.mixer_kernel;
                d.pad_w = t_.mixer_kernel / 2;
                m.mixer = backend.make_conv2d(d, w.get(name + ".token_mixer.weight", {t_.width, 1, 1, t_.mixer_kernel}),
                                              w.get(name + ".token_mixer.bias", {t_.width}));
                m.ffn = std::make_unique<ConvFfn>(w, name + ".ffn", ffn_shape(t_), backend);
            } else {
                m.layer = std::make_unique<TransformerLayer>(w, name, layer_shape(t_), backend);
            }
            modules_.push_back(std::move(m));
        }
        final_norm_ = LayerNormWeights(w, kInfer + "final_layer_norm", t_.width);
        projection_ = w.get(kInfer + "projection", {t_.width, config.embed_dim});
    }

    Tensor encode(const int32_t* tokens, int n, const ActivationHook& hook) const override {
        const int length = t_.context, width = t_.width;
        const int64_t rows = static_cast<int64_t>(n) * length;
        for (int64_t i = 0; i < rows; ++i) {
            if (tokens[i] < 0 || tokens[i] >= t_.vocab) {
                throw Error(ErrorCode::invalid_argument, "token id " + std::to_string(tokens[i]) + " at sequence " +
                                                             std::to_string(i / length) + ", position " + std::to_string(i % length) +
                                                             " is outside the vocabulary [0, " + std::to_string(t_.vocab) + ")");
            }
        }
        std::vector<float> x(rows * width);
        for (int64_t i = 0; i < rows; ++i) {
            std::copy_n(token_embedding_.f32() + static_cast<int64_t>(tokens[i]) * width, width, x.data() + i * width);
        }
        if (hook) hook("text.token_embedding", Tensor::from_f32({n, length, width}, x));
        for (int64_t i = 0; i < rows; ++i) {
            kernels::add_inplace(x.data() + i * width, positional_embedding_.f32() + (i % length) * width, width);
        }
        for (size_t m = 0; m < modules_.size(); ++m) {
            if (modules_[m].layer) {
                modules_[m].layer->run(x.data(), n, length);
            } else {
                run_repmixer(modules_[m], x.data(), n);
            }
            if (hook) hook("text.transformer." + std::to_string(m), Tensor::from_f32({n, length, width}, x));
        }
        std::vector<float> normed(x.size());
        final_norm_.run(x.data(), rows, normed.data());
        if (hook) hook("text.final_layer_norm", Tensor::from_f32({n, length, width}, normed));

        // Pool at the end-of-text token: the position of the largest id, first one on ties.
        Tensor embeddings = Tensor::zeros_f32({n, config_.embed_dim});
        for (int b = 0; b < n; ++b) {
            const int32_t* seq = tokens + static_cast<int64_t>(b) * length;
            const int eot = static_cast<int>(std::max_element(seq, seq + length) - seq);
            kernels::matmul_in_out(normed.data() + (static_cast<int64_t>(b) * length + eot) * width, 1, width,
                                   projection_.f32(), config_.embed_dim, embeddings.f32() + static_cast<int64_t>(b) * config_.embed_dim);
        }
        return embeddings;
    }

private:
    struct Module {
        std::unique_ptr<TransformerLayer> layer;
        std::unique_ptr<kernels::Conv2d> mixer;
        std::unique_ptr<ConvFfn> ffn;
    };

    // The RepMixer block works on the sequence as a [C, 1, L] image: transpose in and out.
    void run_repmixer(const Module& m, float* x, int n) const {
        const int length = t_.context, width = t_.width;
        std::vector<float> channels_first(static_cast<size_t>(n) * width * length), mixed(channels_first.size());
        for (int b = 0; b < n; ++b) {
            const float* src = x + static_cast<int64_t>(b) * length * width;
            float* dst = channels_first.data() + static_cast<int64_t>(b) * width * length;
            for (int l = 0; l < length; ++l) {
                for (int c = 0; c < width; ++c) dst[static_cast<int64_t>(c) * length + l] = src[static_cast<int64_t>(l) * width + c];
            }
        }
        m.mixer->run(channels_first.data(), n, 1, length, mixed.data());
        m.ffn->add_to(mixed.data(), n, 1, length);
        for (int b = 0; b < n; ++b) {
            const float* src = mixed.data() + static_cast<int64_t>(b) * width * length;
            float* dst = x + static_cast<int64_t>(b) * length * width;
            for (int l = 0; l < length; ++l) {
                for (int c = 0; c < width; ++c) dst[static_cast<int64_t>(l) * width + c] = src[static_cast<int64_t>(c) * length + l];
            }
        }
    }

    ModelConfig config_;
    TextEncoderConfig t_;
    Tensor token_embedding_, positional_embedding_, projection_;
    std::vector<Module> modules_;
    LayerNormWeights final_norm_;
};

}  // namespace

std::unique_ptr<TextEncoder> make_text_encoder(const ModelConfig& config, const WeightSource& weights, kernels::Backend& backend) {
    return std::make_unique<ClipTextEncoder>(config, weights, backend);
}

}  // namespace mclip
