// MCi image encoders (MobileCLIP S0/S1/S2, MobileCLIP2 S0/S2/S3/S4): a FastViT-style network of
// RepMixer stages, attention stages, and a conv_exp + global-pool head.
// mobileclip-architecture.md §2–§3; the fixtures README for the five-stage MCi3/MCi4.
//
// Inference-form tensor names (prefix "img."), all convolutions with bias; network.K numbers the
// stages, RepCPEs and PatchEmbeds in order (MciConfig::stage_index; four stages: 0, 1, …, 7):
//   patch_embed.{0,1,2}                     stem convs (MobileOne blocks folded)
//   network.K.B.token_mixer                 RepMixer folded into one 3×3 depthwise conv (residual inside)
//   network.K.B.ffn.{dw,fc1,fc2}            ConvFFN (BN folded into dw, block layer scale into fc2)
//   network.K.proj.0                        PatchEmbed 7×7 (3×3 folded in), depthwise ×2 channels, stride 2
//   network.K.proj.0.se.{fc1,fc2}           squeeze-excite of that PatchEmbed (where downsample_se)
//   network.K.proj.1                        PatchEmbed 1×1 (MobileOne folded)
//   network.K                               RepCPE 7×7 depthwise before an attention stage (residual inside)
//   network.K.B.qkv / network.K.B.proj      attention, layer_scale_1 folded into proj; a BatchNorm
//                                           norm (MCi0–2) is folded into qkv, a LayerNorm (MCi3/4)
//                                           stays as network.K.B.norm.{weight,bias}
//   conv_exp, conv_exp.se.{fc1,fc2}         head conv (3×3 depthwise ×2 channels) and its SE
//   head.proj                               [2·C_last, embed_dim] projection (stored [in, out])
//   head.bias                               [embed_dim], when head_bias (timm's Linear head)
#include <vector>

#include "common/error.h"
#include "kernels/ops.h"
#include "models/blocks.h"
#include "models/encoder.h"

namespace mclip {
namespace {

const std::string kTrain = "image_encoder.model.";
const std::string kInfer = "img.";

std::string network(int index) { return "network." + std::to_string(index); }

std::string block_name(const MciConfig& m, int stage, int block) { return network(m.stage_index(stage)) + "." + std::to_string(block); }

ConvFfnShape ffn_shape(const MciConfig& m, int stage) {
    const int c = m.widths[stage];
    return {c, m.mlp_ratio * c, m.ffn_kernel, m.ffn_kernel};
}

// RepMixer: x + ℓ ⊙ (mixer(x) − norm(x)) = conv(x; I + ℓ(W_m − W_n), ℓ(b_m − b_n)).
void fold_repmixer(const MciConfig& m, const WeightSource& ck, const std::string& train, const std::string& infer, int c,
                   TensorMap& out) {
    const std::string mixer = train + ".token_mixer";
    const int k = m.mixer_kernel;
    if (ck.has(mixer + ".reparam_conv.weight")) {
        copy_tensor(ck, mixer + ".reparam_conv.weight", {c, 1, k, k}, out, infer + ".token_mixer.weight");
        copy_tensor(ck, mixer + ".reparam_conv.bias", {c}, out, infer + ".token_mixer.bias");
        return;
    }
    FoldedConv mixed = fold_mobileone(ck, mixer + ".mixer", {c, c, k, k, c, true, true});
    FoldedConv norm = fold_mobileone(ck, mixer + ".norm", {c, c, k, k, c, false, true, 0});
    for (int64_t i = 0; i < mixed.weight.elements(); ++i) mixed.weight.f32()[i] -= norm.weight.f32()[i];
    for (int i = 0; i < c; ++i) mixed.bias.f32()[i] -= norm.bias.f32()[i];
    scale_folded(mixed, read_channel_vector(ck, mixer + ".layer_scale", c));
    const Tensor identity = identity_kernel(c, 1, k, k);
    for (int64_t i = 0; i < mixed.weight.elements(); ++i) mixed.weight.f32()[i] += identity.f32()[i];
    put_conv(out, infer + ".token_mixer", mixed);
}

// Attention block: x + λ1 ⊙ proj(MHSA(norm(x))). A BatchNorm norm folds into qkv; a LayerNorm is
// kept. λ1 scales proj's rows and bias.
void fold_attention(const MciConfig& m, const WeightSource& ck, const std::string& train, const std::string& infer, int c,
                    TensorMap& out) {
    const Tensor qkv = ck.get(train + ".token_mixer.qkv.weight", {3 * c, c});
    if (m.attention_norm == MciAttentionNorm::layer_norm) {
        copy_tensor(ck, train + ".norm.weight", {c}, out, infer + ".norm.weight");
        copy_tensor(ck, train + ".norm.bias", {c}, out, infer + ".norm.bias");
        out[infer + ".qkv.weight"] = qkv.clone();
        out[infer + ".qkv.bias"] = Tensor::zeros_f32({3 * c});
    } else {
        put_conv(out, infer + ".qkv", fold_input_affine(qkv, Tensor(), read_batch_norm(ck, train + ".norm", c)));
    }
    const std::vector<float> lambda1 = read_channel_vector(ck, train + ".layer_scale_1", c);
    FoldedConv proj{ck.get(train + ".token_mixer.proj.weight", {c, c}).clone(), ck.get(train + ".token_mixer.proj.bias", {c}).clone()};
    scale_folded(proj, lambda1);
    put_conv(out, infer + ".proj", proj);
}

// PatchEmbed after stage s: a large-kernel depthwise conv (its 3×3 branch folded in) with an
// optional squeeze-excite, then a 1×1 MobileOne block.
void fold_downsample(const MciConfig& m, const WeightSource& ck, int s, TensorMap& out) {
    const int cout = m.widths[s + 1];
    const std::string train = kTrain + network(m.downsample_index(s)) + ".proj";
    const std::string infer = kInfer + network(m.downsample_index(s)) + ".proj";
    const int k = m.downsample_kernel;
    if (ck.has(train + ".0.lkb_reparam.weight")) {
        copy_tensor(ck, train + ".0.lkb_reparam.weight", {cout, 1, k, k}, out, infer + ".0.weight");
        copy_tensor(ck, train + ".0.lkb_reparam.bias", {cout}, out, infer + ".0.bias");
    } else {
        // Large kernel + small kernel (zero-padded to 7×7), each with its BN.
        FoldedConv large = fold_conv_batch_norm(ck.get(train + ".0.lkb_origin.conv.weight", {cout, 1, k, k}),
                                                read_batch_norm(ck, train + ".0.lkb_origin.bn", cout));
        FoldedConv small = fold_conv_batch_norm(ck.get(train + ".0.small_conv.conv.weight", {cout, 1, 3, 3}),
                                                read_batch_norm(ck, train + ".0.small_conv.bn", cout));
        small.weight = pad_kernel(small.weight, k, k);
        add_folded(large, small);
        put_conv(out, infer + ".0", large);
    }
    if (m.downsample_se[s]) {
        const int r = cout / m.se_divisor;
        copy_tensor(ck, train + ".0.se.fc1.weight", {r, cout, 1, 1}, out, infer + ".0.se.fc1.weight");
        copy_tensor(ck, train + ".0.se.fc1.bias", {r}, out, infer + ".0.se.fc1.bias");
        copy_tensor(ck, train + ".0.se.fc2.weight", {cout, r, 1, 1}, out, infer + ".0.se.fc2.weight");
        copy_tensor(ck, train + ".0.se.fc2.bias", {cout}, out, infer + ".0.se.fc2.bias");
    }
    put_conv(out, infer + ".1", fold_mobileone(ck, train + ".1", {cout, cout, 1, 1, 1, false, true}));
}

// RepCPE before attention stage s: x + dwconv(x) = dwconv(x; W + I).
void fold_cpe(const MciConfig& m, const WeightSource& ck, int s, TensorMap& out) {
    const int c = m.widths[s];
    const int k = m.cpe_kernel;
    const std::string train = kTrain + network(m.cpe_index(s));
    const std::string infer = kInfer + network(m.cpe_index(s));
    if (ck.has(train + ".reparam_conv.weight")) {
        copy_tensor(ck, train + ".reparam_conv.weight", {c, 1, k, k}, out, infer + ".weight");
        copy_tensor(ck, train + ".reparam_conv.bias", {c}, out, infer + ".bias");
        return;
    }
    FoldedConv cpe{ck.get(train + ".pe.weight", {c, 1, k, k}).clone(), ck.get(train + ".pe.bias", {c}).clone()};
    add_folded(cpe, {identity_kernel(c, 1, k, k), Tensor::zeros_f32({c})});
    put_conv(out, infer, cpe);
}

}  // namespace

void fold_mci_image(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const MciConfig& m = config.image.mci;
    const int c0 = m.widths[0];
    const bool scale = m.stem_scale_branch;
    put_conv(out, kInfer + "patch_embed.0", fold_mobileone(ck, kTrain + "patch_embed.0", {3, c0, 3, 3, 1, scale, false}));
    put_conv(out, kInfer + "patch_embed.1", fold_mobileone(ck, kTrain + "patch_embed.1", {c0, c0, 3, 3, c0, scale, false}));
    put_conv(out, kInfer + "patch_embed.2", fold_mobileone(ck, kTrain + "patch_embed.2", {c0, c0, 1, 1, 1, false, true}));

    for (int s = 0; s < m.stages(); ++s) {
        const int c = m.widths[s];
        if (m.attention_stage(s)) fold_cpe(m, ck, s, out);
        for (int b = 0; b < m.depths[s]; ++b) {
            const std::string train = kTrain + block_name(m, s, b);
            const std::string infer = kInfer + block_name(m, s, b);
            if (m.attention_stage(s)) {
                fold_attention(m, ck, train, infer, c, out);
                fold_conv_ffn(ck, train, train + ".layer_scale_2", ffn_shape(m, s), out, infer + ".ffn");
            } else {
                fold_repmixer(m, ck, train, infer, c, out);
                fold_conv_ffn(ck, train, train + ".layer_scale", ffn_shape(m, s), out, infer + ".ffn");
            }
        }
        if (s + 1 < m.stages()) fold_downsample(m, ck, s, out);
    }

    const int c_last = m.last_width();
    const int c_exp = 2 * c_last;
    put_conv(out, kInfer + "conv_exp", fold_mobileone(ck, kTrain + "conv_exp", {c_last, c_exp, 3, 3, c_last, true, false}));
    const int r = c_exp / m.conv_exp_se_divisor;
    copy_tensor(ck, kTrain + "conv_exp.se.reduce.weight", {r, c_exp, 1, 1}, out, kInfer + "conv_exp.se.fc1.weight");
    copy_tensor(ck, kTrain + "conv_exp.se.reduce.bias", {r}, out, kInfer + "conv_exp.se.fc1.bias");
    copy_tensor(ck, kTrain + "conv_exp.se.expand.weight", {c_exp, r, 1, 1}, out, kInfer + "conv_exp.se.fc2.weight");
    copy_tensor(ck, kTrain + "conv_exp.se.expand.bias", {c_exp}, out, kInfer + "conv_exp.se.fc2.bias");
    copy_tensor(ck, kTrain + "head.proj", {c_exp, config.embed_dim}, out, kInfer + "head.proj");
    if (m.head_bias) copy_tensor(ck, kTrain + "head.bias", {config.embed_dim}, out, kInfer + "head.bias");
}

namespace {

using kernels::Activation;
using kernels::ConvDesc;

// typical_size: the (square) input the layer sees at the model's input size.
ConvDesc conv_desc(int in, int out, int k, int stride, int groups, Activation act, int typical_size) {
    ConvDesc d;
    d.in_channels = in;
    d.out_channels = out;
    d.kernel_h = d.kernel_w = k;
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = k / 2;
    d.groups = groups;
    d.activation = act;
    d.typical_h = d.typical_w = typical_size;
    return d;
}

// Workspace slots of the MCi graph: the feature maps alternate between two buffers.
enum : int { kPing = kFirstEncoderSlot, kPong, kPooled };

// A feature map [n, h, w, c] in one of the two alternating workspace buffers.
struct FeatureMap {
    float* data;
    int slot;
    int n, h, w, c;
    int64_t spatial() const { return static_cast<int64_t>(h) * w; }
    int64_t size() const { return static_cast<int64_t>(n) * h * w * c; }
};

class MciImageEncoder final : public ImageEncoder {
public:
    MciImageEncoder(const ModelConfig& config, const WeightSource& w, const GraphOptions& options)
        : config_(config), m_(config.image.mci) {
        kernels::Backend& backend = *options.backend;
        // Convolutions with enough work per weight run in the model's precision (bf16 for int8
        // models on the main path); depthwise ones as GraphOptions::depthwise_precision says,
        // except on the main path: the RepCPE's output is the residual stream itself, and int8
        // there took MobileCLIP2-S3's int8 image error from 4.6e-2 to 5.4e-2 (bound 5e-2).
        auto describe = [&](const std::string& name, ConvDesc d, bool main_path = false) {
            if (d.depthwise()) {
                d.precision = main_path ? kernels::Precision::f32 : options.depthwise_precision();
            } else {
                d.precision = main_path ? options.main_path_precision() : options.precision;
            }
            d.name = name;
            return d;
        };
        auto weight = [&](const ConvDesc& d) {
            return w.get(d.name + ".weight", {d.out_channels, d.in_channels / d.groups, d.kernel_h, d.kernel_w});
        };
        auto bias = [&](const ConvDesc& d) { return w.get(d.name + ".bias", {d.out_channels}); };
        auto make_conv = [&](const std::string& name, const ConvDesc& d, bool main_path = false) {
            const ConvDesc described = describe(name, d, main_path);
            return backend.make_conv2d(described, weight(described), bias(described));
        };
        const int c0 = m_.widths[0];
        int size = config.image_size();
        // The stem's first two layers as one operator where the backend has it.
        const ConvDesc image_conv = describe(kInfer + "patch_embed.0", conv_desc(3, c0, 3, 2, 1, Activation::gelu, size), true);
        size = image_conv.output_h(size);
        const ConvDesc stem_depthwise = describe(kInfer + "patch_embed.1", conv_desc(c0, c0, 3, 2, c0, Activation::gelu, size));
        size = stem_depthwise.output_h(size);
        stem_pair_ = backend.make_conv_pair(image_conv, weight(image_conv), bias(image_conv), stem_depthwise, weight(stem_depthwise),
                                            bias(stem_depthwise));
        if (!stem_pair_) {
            stem_.push_back(backend.make_conv2d(image_conv, weight(image_conv), bias(image_conv)));
            stem_.push_back(backend.make_conv2d(stem_depthwise, weight(stem_depthwise), bias(stem_depthwise)));
        }
        stem_.push_back(make_conv(kInfer + "patch_embed.2", conv_desc(c0, c0, 1, 1, 1, Activation::gelu, size), true));
        stages_.resize(m_.stages());
        for (int s = 0; s < m_.stages(); ++s) {
            const int c = m_.widths[s];
            Stage& stage = stages_[s];
            if (m_.attention_stage(s)) {
                stage.cpe = make_conv(kInfer + network(m_.cpe_index(s)), conv_desc(c, c, m_.cpe_kernel, 1, c, Activation::none, size), true);
            }
            for (int b = 0; b < m_.depths[s]; ++b) {
                const std::string name = kInfer + block_name(m_, s, b);
                Block block;
                if (!m_.attention_stage(s)) {
                    block.mixer = make_conv(name + ".token_mixer", conv_desc(c, c, m_.mixer_kernel, 1, c, Activation::none, size));
                } else {
                    // qkv and attention's products stay float32 (kernels.h); attention's narrow
                    // result is what proj reads, and proj adds into x.
                    const int tokens = size * size;
                    const DType narrow = options.narrow_type();
                    auto make_linear = [&](const std::string& layer, int out, bool accumulate, DType input) {
                        kernels::LinearDesc d;
                        d.in_features = c;
                        d.out_features = out;
                        d.accumulate = accumulate;
                        d.precision = options.precision;
                        d.input = input;
                        d.typical_rows = tokens;
                        d.name = layer;
                        return backend.make_linear(d, w.get(layer + ".weight", {out, c}), w.get(layer + ".bias", {out}));
                    };
                    if (m_.attention_norm == MciAttentionNorm::layer_norm) {
                        block.norm_weight = w.get(name + ".norm.weight", {c});
                        block.norm_bias = w.get(name + ".norm.bias", {c});
                    }
                    block.qkv = make_linear(name + ".qkv", 3 * c, false, DType::f32);
                    block.attention = backend.make_attention({c / m_.head_dim, m_.head_dim, false, options.precision, DType::f32, narrow});
                    block.proj = make_linear(name + ".proj", c, true, narrow);
                }
                block.ffn = std::make_unique<ConvFfn>(w, name + ".ffn", ffn_shape(m_, s), options, size, size);
                stage.blocks.push_back(std::move(block));
            }
            if (s + 1 < m_.stages()) {
                const int cout = m_.widths[s + 1];
                const std::string name = kInfer + network(m_.downsample_index(s)) + ".proj";
                Downsample& d = stage.downsample;
                // GELU follows the squeeze-excite gate when there is one, else it is fused into the conv.
                const bool se = m_.downsample_se[s];
                d.large = make_conv(name + ".0", conv_desc(c, cout, m_.downsample_kernel, 2, c, se ? Activation::none : Activation::gelu, size));
                size = d.large->desc().output_h(size);
                if (se) d.se = std::make_unique<SqueezeExcite>(w, name + ".0.se", cout, cout / m_.se_divisor);
                d.pointwise = make_conv(name + ".1", conv_desc(cout, cout, 1, 1, 1, Activation::gelu, size), true);
            }
        }
        const int c_last = m_.last_width();
        conv_exp_ = make_conv(kInfer + "conv_exp", conv_desc(c_last, 2 * c_last, 3, 1, c_last, Activation::none, size));
        conv_exp_se_ = std::make_unique<SqueezeExcite>(w, kInfer + "conv_exp.se", 2 * c_last, 2 * c_last / m_.conv_exp_se_divisor);
        head_ = w.get(kInfer + "head.proj", {2 * c_last, config.embed_dim});
        if (m_.head_bias) head_bias_ = w.get(kInfer + "head.bias", {config.embed_dim});
    }

    Tensor encode(const Tensor& images, const ActivationHook& hook) const override {
        if (images.rank() != 4 || images.dim(1) != 3) {
            throw Error(ErrorCode::invalid_argument, "image batch must be [N, 3, H, W], got " + shape_to_string(images.shape()));
        }
        const auto workspace = pool_.acquire();
        kernels::Workspace& ws = *workspace;
        const int n = static_cast<int>(images.dim(0));
        FeatureMap x{nullptr, kPing, n, static_cast<int>(images.dim(2)), static_cast<int>(images.dim(3)), 3};
        x.data = ws.floats(x.slot, x.size());
        kernels::nchw_to_nhwc(images.f32(), n, 3, x.h, x.w, x.data);
        auto emit = [&](const std::string& name) {
            if (!hook) return;
            Tensor snapshot = Tensor::zeros_f32({x.n, x.c, x.h, x.w});
            kernels::nhwc_to_nchw(x.data, x.n, x.c, x.h, x.w, snapshot.f32());
            hook(name, snapshot);
        };
        if (stem_pair_) x = apply(*stem_pair_, x, ws);
        for (const auto& conv : stem_) x = apply(*conv, x, ws);
        emit("image.stem");
        for (int s = 0; s < m_.stages(); ++s) {
            const Stage& stage = stages_[s];
            if (stage.cpe) {
                x = apply(*stage.cpe, x, ws);
                emit("image." + network(m_.cpe_index(s)));
            }
            for (const auto& block : stage.blocks) {
                if (block.mixer) {
                    x = apply(*block.mixer, x, ws);
                } else {
                    attend(block, x, ws, m_.norm_eps);
                }
                block.ffn->add_to(x.data, x.n, x.h, x.w, ws);
            }
            emit("image." + network(m_.stage_index(s)));
            if (stage.downsample.large) {
                const Downsample& d = stage.downsample;
                x = apply(*d.large, x, ws);
                if (d.se) d.se->apply(x.data, x.n, x.spatial(), true);
                x = apply(*d.pointwise, x, ws);
                emit("image." + network(m_.downsample_index(s)));
            }
        }
        x = apply(*conv_exp_, x, ws);
        conv_exp_se_->apply(x.data, x.n, x.spatial(), true);
        emit("image.conv_exp");

        float* pooled = ws.floats(kPooled, static_cast<int64_t>(n) * x.c);
        for (int b = 0; b < n; ++b) {
            kernels::global_average_pool(x.data + static_cast<int64_t>(b) * x.spatial() * x.c, x.spatial(), x.c,
                                         pooled + static_cast<int64_t>(b) * x.c);
        }
        Tensor embeddings = Tensor::zeros_f32({n, config_.embed_dim});
        kernels::matmul_in_out(pooled, n, x.c, head_.f32(), config_.embed_dim, embeddings.f32());
        if (m_.head_bias) {
            for (int b = 0; b < n; ++b) kernels::add_inplace(embeddings.f32() + static_cast<int64_t>(b) * config_.embed_dim, head_bias_.f32(), config_.embed_dim);
        }
        return embeddings;
    }

private:
    struct Block {
        std::unique_ptr<kernels::Conv2d> mixer;             // RepMixer stages
        Tensor norm_weight, norm_bias;                       // attention stages with LayerNorm
        std::unique_ptr<kernels::Linear> qkv, proj;          // attention stages
        std::unique_ptr<kernels::Attention> attention;
        std::unique_ptr<ConvFfn> ffn;
    };
    struct Downsample {
        std::unique_ptr<kernels::Conv2d> large, pointwise;
        std::unique_ptr<SqueezeExcite> se;
    };
    struct Stage {
        std::unique_ptr<kernels::Conv2d> cpe;  // attention stages
        std::vector<Block> blocks;
        Downsample downsample;                 // into the next stage (none after the last)
    };

    // conv(x) into the other feature-map buffer.
    static FeatureMap apply(const kernels::Conv2d& conv, const FeatureMap& x, kernels::Workspace& ws) {
        const ConvDesc& d = conv.desc();
        FeatureMap y{nullptr, x.slot == kPing ? kPong : kPing, x.n, d.output_h(x.h), d.output_w(x.w), d.out_channels};
        y.data = ws.floats(y.slot, y.size());
        conv.run(x.data, x.n, x.h, x.w, y.data);
        return y;
    }

    static FeatureMap apply(const kernels::ConvPair& pair, const FeatureMap& x, kernels::Workspace& ws) {
        const ConvDesc &first = pair.first(), &second = pair.second();
        FeatureMap y{nullptr, x.slot == kPing ? kPong : kPing, x.n, second.output_h(first.output_h(x.h)), second.output_w(first.output_w(x.w)),
                     second.out_channels};
        y.data = ws.floats(y.slot, y.size());
        pair.run(x.data, x.n, x.h, x.w, y.data);
        return y;
    }

    // x += proj(MHSA(qkv(norm(tokens)))): an NHWC feature map is already the token matrix [H·W, C].
    static void attend(const Block& block, const FeatureMap& x, kernels::Workspace& ws, float norm_eps) {
        const int64_t rows = x.n * x.spatial();
        const size_t narrow = dtype_size(block.proj->desc().input);
        const float* tokens = x.data;
        if (!block.norm_weight.empty()) {
            float* normalized = ws.floats(kScratch2, rows * x.c);
            kernels::layer_norm(x.data, rows, x.c, block.norm_weight.f32(), block.norm_bias.f32(), norm_eps, normalized);
            tokens = normalized;
        }
        float* qkv = ws.floats(kScratch0, rows * 3 * x.c);
        void* attended = ws.bytes(kScratch1, rows * x.c * narrow);
        block.qkv->run(tokens, static_cast<int>(rows), qkv);
        block.attention->run(qkv, x.n, static_cast<int>(x.spatial()), attended);
        block.proj->run(attended, static_cast<int>(rows), x.data);
    }

    ModelConfig config_;
    MciConfig m_;
    std::unique_ptr<kernels::ConvPair> stem_pair_;     // patch_embed.0 and .1, where the backend fuses them
    std::vector<std::unique_ptr<kernels::Conv2d>> stem_;  // the rest of the stem
    std::vector<Stage> stages_;
    std::unique_ptr<kernels::Conv2d> conv_exp_;
    std::unique_ptr<SqueezeExcite> conv_exp_se_;
    Tensor head_, head_bias_;
    mutable kernels::WorkspacePool pool_;
};

}  // namespace

std::unique_ptr<ImageEncoder> make_mci_image_encoder(const ModelConfig& config, const WeightSource& weights,
                                                     const GraphOptions& options) {
    return std::make_unique<MciImageEncoder>(config, weights, options);
}

}  // namespace mclip
