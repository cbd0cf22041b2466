// MCi image encoders (MobileCLIP S0, S1, S2): a FastViT-style network of RepMixer stages, one
// attention stage, and a conv_exp + global-pool head. mobileclip-architecture.md §2–§3.
//
// Inference-form tensor names (prefix "img."), all convolutions with bias:
//   patch_embed.{0,1,2}                     stem convs (MobileOne blocks folded)
//   network.{0,2,4}.B.token_mixer           RepMixer folded into one 3×3 depthwise conv (residual inside)
//   network.{0,2,4,7}.B.ffn.{dw,fc1,fc2}    ConvFFN (BN folded into dw, block layer scale into fc2)
//   network.{1,3,5}.proj.0                  PatchEmbed 7×7 (3×3 folded in), depthwise ×2 channels, stride 2
//   network.{3,5}.proj.0.se.{fc1,fc2}       squeeze-excite of that PatchEmbed
//   network.{1,3,5}.proj.1                  PatchEmbed 1×1 (MobileOne folded)
//   network.6                               RepCPE 7×7 depthwise (residual inside)
//   network.7.B.qkv / network.7.B.proj      attention, BN folded into qkv, layer_scale_1 into proj
//   conv_exp, conv_exp.se.{fc1,fc2}         head conv (3×3 depthwise ×2 channels) and its SE
//   head.proj                               [2·C3, embed_dim] projection (stored [in, out])
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

// network.K index of stage s (0..3) and of the PatchEmbed after stage s (0..2).
int stage_index(int s) { return s == 3 ? 7 : 2 * s; }
int downsample_index(int s) { return 2 * s + 1; }

std::string block_name(int stage, int block) {
    return "network." + std::to_string(stage_index(stage)) + "." + std::to_string(block);
}

ConvFfnShape ffn_shape(const MciConfig& m, int stage) {
    const int c = m.widths[stage];
    return {c, m.mlp_ratio * c, m.ffn_kernel, m.ffn_kernel};
}

}  // namespace

void fold_mci_image(const ModelConfig& config, const WeightSource& ck, TensorMap& out) {
    const MciConfig& m = config.image.mci;
    const int c0 = m.widths[0];

    put_conv(out, kInfer + "patch_embed.0", fold_mobileone(ck, kTrain + "patch_embed.0", {3, c0, 3, 3, 1, true, false}));
    put_conv(out, kInfer + "patch_embed.1", fold_mobileone(ck, kTrain + "patch_embed.1", {c0, c0, 3, 3, c0, true, false}));
    put_conv(out, kInfer + "patch_embed.2", fold_mobileone(ck, kTrain + "patch_embed.2", {c0, c0, 1, 1, 1, false, true}));

    for (int s = 0; s < 4; ++s) {
        const int c = m.widths[s];
        for (int b = 0; b < m.depths[s]; ++b) {
            const std::string train = kTrain + block_name(s, b);
            const std::string infer = kInfer + block_name(s, b);
            if (s < 3) {
                // RepMixer: x + ℓ ⊙ (mixer(x) − norm(x)) = conv(x; I + ℓ(W_m − W_n), ℓ(b_m − b_n)).
                const std::string mixer = train + ".token_mixer";
                const int k = m.mixer_kernel;
                if (ck.has(mixer + ".reparam_conv.weight")) {
                    copy_tensor(ck, mixer + ".reparam_conv.weight", {c, 1, k, k}, out, infer + ".token_mixer.weight");
                    copy_tensor(ck, mixer + ".reparam_conv.bias", {c}, out, infer + ".token_mixer.bias");
                } else {
                    FoldedConv mixed = fold_mobileone(ck, mixer + ".mixer", {c, c, k, k, c, true, true});
                    FoldedConv norm = fold_mobileone(ck, mixer + ".norm", {c, c, k, k, c, false, true, 0});
                    for (int64_t i = 0; i < mixed.weight.elements(); ++i) mixed.weight.f32()[i] -= norm.weight.f32()[i];
                    for (int i = 0; i < c; ++i) mixed.bias.f32()[i] -= norm.bias.f32()[i];
                    scale_folded(mixed, read_channel_vector(ck, mixer + ".layer_scale", c));
                    const Tensor identity = identity_kernel(c, 1, k, k);
                    for (int64_t i = 0; i < mixed.weight.elements(); ++i) mixed.weight.f32()[i] += identity.f32()[i];
                    put_conv(out, infer + ".token_mixer", mixed);
                }
                fold_conv_ffn(ck, train, train + ".layer_scale", ffn_shape(m, s), out, infer + ".ffn");
            } else {
                // Attention block: x + λ1 ⊙ proj(MHSA(BN(x))). BN(x) = t ⊙ x + s folds into qkv as
                // W' = W·diag(t), b' = W·s; λ1 scales proj's rows and bias.
                const BatchNormAffine bn = read_batch_norm(ck, train + ".norm", c);
                const Tensor qkv = ck.get(train + ".token_mixer.qkv.weight", {3 * c, c});
                Tensor weight = Tensor::zeros_f32({3 * c, c});
                Tensor bias = Tensor::zeros_f32({3 * c});
                for (int o = 0; o < 3 * c; ++o) {
                    double acc = 0;
                    for (int i = 0; i < c; ++i) {
                        const float w = qkv.f32()[static_cast<int64_t>(o) * c + i];
                        weight.f32()[static_cast<int64_t>(o) * c + i] = w * bn.scale[i];
                        acc += static_cast<double>(w) * bn.shift[i];
                    }
                    bias.f32()[o] = static_cast<float>(acc);
                }
                out[infer + ".qkv.weight"] = weight;
                out[infer + ".qkv.bias"] = bias;
                const std::vector<float> lambda1 = read_channel_vector(ck, train + ".layer_scale_1", c);
                FoldedConv proj{ck.get(train + ".token_mixer.proj.weight", {c, c}).clone(),
                                ck.get(train + ".token_mixer.proj.bias", {c}).clone()};
                scale_folded(proj, lambda1);
                put_conv(out, infer + ".proj", proj);
                fold_conv_ffn(ck, train, train + ".layer_scale_2", ffn_shape(m, s), out, infer + ".ffn");
            }
        }
        if (s < 3) {
            const int cout = m.widths[s + 1];
            const std::string train = kTrain + "network." + std::to_string(downsample_index(s)) + ".proj";
            const std::string infer = kInfer + "network." + std::to_string(downsample_index(s)) + ".proj";
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
                for (const char* fc : {".fc1", ".fc2"}) {
                    const bool first = std::string(fc) == ".fc1";
                    copy_tensor(ck, train + ".0.se" + fc + ".weight", first ? Shape{r, cout, 1, 1} : Shape{cout, r, 1, 1}, out,
                                infer + ".0.se" + fc + ".weight");
                    copy_tensor(ck, train + ".0.se" + fc + ".bias", {first ? r : cout}, out, infer + ".0.se" + fc + ".bias");
                }
            }
            put_conv(out, infer + ".1", fold_mobileone(ck, train + ".1", {cout, cout, 1, 1, 1, false, true}));
        }
    }

    const int c3 = m.widths[3];
    const int k = m.cpe_kernel;
    if (ck.has(kTrain + "network.6.reparam_conv.weight")) {
        copy_tensor(ck, kTrain + "network.6.reparam_conv.weight", {c3, 1, k, k}, out, kInfer + "network.6.weight");
        copy_tensor(ck, kTrain + "network.6.reparam_conv.bias", {c3}, out, kInfer + "network.6.bias");
    } else {
        // RepCPE: x + dwconv(x) = dwconv(x; W + I).
        FoldedConv cpe{ck.get(kTrain + "network.6.pe.weight", {c3, 1, k, k}).clone(),
                       ck.get(kTrain + "network.6.pe.bias", {c3}).clone()};
        add_folded(cpe, {identity_kernel(c3, 1, k, k), Tensor::zeros_f32({c3})});
        put_conv(out, kInfer + "network.6", cpe);
    }

    const int c_exp = 2 * c3;
    put_conv(out, kInfer + "conv_exp", fold_mobileone(ck, kTrain + "conv_exp", {c3, c_exp, 3, 3, c3, true, false}));
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
        // models on the main path); depthwise ones are bound by memory traffic and stay float32.
        auto make_conv = [&](const std::string& name, ConvDesc d, bool main_path = false) {
            if (!d.depthwise()) d.precision = main_path ? options.main_path_precision() : options.precision;
            d.name = name;
            return backend.make_conv2d(d, w.get(name + ".weight", {d.out_channels, d.in_channels / d.groups, d.kernel_h, d.kernel_w}),
                                       w.get(name + ".bias", {d.out_channels}));
        };
        const int c0 = m_.widths[0];
        int size = config.image_size();
        stem_.push_back(make_conv(kInfer + "patch_embed.0", conv_desc(3, c0, 3, 2, 1, Activation::gelu, size), true));
        size = stem_.back()->desc().output_h(size);
        stem_.push_back(make_conv(kInfer + "patch_embed.1", conv_desc(c0, c0, 3, 2, c0, Activation::gelu, size)));
        size = stem_.back()->desc().output_h(size);
        stem_.push_back(make_conv(kInfer + "patch_embed.2", conv_desc(c0, c0, 1, 1, 1, Activation::gelu, size), true));
        for (int s = 0; s < 4; ++s) {
            const int c = m_.widths[s];
            if (s == 3) cpe_ = make_conv(kInfer + "network.6", conv_desc(c, c, m_.cpe_kernel, 1, c, Activation::none, size));
            for (int b = 0; b < m_.depths[s]; ++b) {
                const std::string name = kInfer + block_name(s, b);
                Block block;
                if (s < 3) {
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
                    block.qkv = make_linear(name + ".qkv", 3 * c, false, DType::f32);
                    block.attention = backend.make_attention({c / m_.head_dim, m_.head_dim, false, options.precision, DType::f32, narrow});
                    block.proj = make_linear(name + ".proj", c, true, narrow);
                }
                block.ffn = std::make_unique<ConvFfn>(w, name + ".ffn", ffn_shape(m_, s), options, size, size);
                stages_[s].push_back(std::move(block));
            }
            if (s < 3) {
                const int cout = m_.widths[s + 1];
                const std::string name = kInfer + "network." + std::to_string(downsample_index(s)) + ".proj";
                Downsample d;
                // GELU follows the squeeze-excite gate when there is one, else it is fused into the conv.
                const bool se = m_.downsample_se[s];
                d.large = make_conv(name + ".0", conv_desc(c, cout, m_.downsample_kernel, 2, c, se ? Activation::none : Activation::gelu, size));
                size = d.large->desc().output_h(size);
                if (se) d.se = std::make_unique<SqueezeExcite>(w, name + ".0.se", cout, cout / m_.se_divisor);
                d.pointwise = make_conv(name + ".1", conv_desc(cout, cout, 1, 1, 1, Activation::gelu, size), true);
                downsamples_[s] = std::move(d);
            }
        }
        const int c3 = m_.widths[3];
        conv_exp_ = make_conv(kInfer + "conv_exp", conv_desc(c3, 2 * c3, 3, 1, c3, Activation::none, size));
        conv_exp_se_ = std::make_unique<SqueezeExcite>(w, kInfer + "conv_exp.se", 2 * c3, 2 * c3 / m_.conv_exp_se_divisor);
        head_ = w.get(kInfer + "head.proj", {2 * c3, config.embed_dim});
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
        for (const auto& conv : stem_) x = apply(*conv, x, ws);
        emit("image.stem");
        for (int s = 0; s < 4; ++s) {
            if (s == 3) {
                x = apply(*cpe_, x, ws);
                emit("image.network.6");
            }
            for (const auto& block : stages_[s]) {
                if (block.mixer) {
                    x = apply(*block.mixer, x, ws);
                } else {
                    attend(block, x, ws);
                }
                block.ffn->add_to(x.data, x.n, x.h, x.w, ws);
            }
            emit("image.network." + std::to_string(stage_index(s)));
            if (s < 3) {
                const Downsample& d = downsamples_[s];
                x = apply(*d.large, x, ws);
                if (d.se) d.se->apply(x.data, x.n, x.spatial(), true);
                x = apply(*d.pointwise, x, ws);
                emit("image.network." + std::to_string(downsample_index(s)));
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
        std::unique_ptr<kernels::Linear> qkv, proj;          // attention stage
        std::unique_ptr<kernels::Attention> attention;
        std::unique_ptr<ConvFfn> ffn;
    };
    struct Downsample {
        std::unique_ptr<kernels::Conv2d> large, pointwise;
        std::unique_ptr<SqueezeExcite> se;
    };

    // conv(x) into the other feature-map buffer.
    static FeatureMap apply(const kernels::Conv2d& conv, const FeatureMap& x, kernels::Workspace& ws) {
        const ConvDesc& d = conv.desc();
        FeatureMap y{nullptr, x.slot == kPing ? kPong : kPing, x.n, d.output_h(x.h), d.output_w(x.w), d.out_channels};
        y.data = ws.floats(y.slot, y.size());
        conv.run(x.data, x.n, x.h, x.w, y.data);
        return y;
    }

    // x += proj(MHSA(qkv(tokens))): an NHWC feature map is already the token matrix [H·W, C].
    static void attend(const Block& block, const FeatureMap& x, kernels::Workspace& ws) {
        const int64_t rows = x.n * x.spatial();
        const size_t narrow = dtype_size(block.proj->desc().input);
        float* qkv = ws.floats(kScratch0, rows * 3 * x.c);
        void* attended = ws.bytes(kScratch1, rows * x.c * narrow);
        block.qkv->run(x.data, static_cast<int>(rows), qkv);
        block.attention->run(qkv, x.n, static_cast<int>(x.spatial()), attended);
        block.proj->run(attended, static_cast<int>(rows), x.data);
    }

    ModelConfig config_;
    MciConfig m_;
    std::vector<std::unique_ptr<kernels::Conv2d>> stem_;
    std::vector<Block> stages_[4];
    Downsample downsamples_[3];
    std::unique_ptr<kernels::Conv2d> cpe_, conv_exp_;
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
