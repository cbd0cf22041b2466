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
}

namespace {

using kernels::Activation;
using kernels::ConvDesc;

std::unique_ptr<kernels::Conv2d> make_conv(const WeightSource& w, const std::string& name, ConvDesc d,
                                           kernels::Backend& backend) {
    return backend.make_conv2d(d, w.get(name + ".weight", {d.out_channels, d.in_channels / d.groups, d.kernel_h, d.kernel_w}),
                               w.get(name + ".bias", {d.out_channels}));
}

ConvDesc conv_desc(int in, int out, int k, int stride, int groups, Activation act) {
    ConvDesc d;
    d.in_channels = in;
    d.out_channels = out;
    d.kernel_h = d.kernel_w = k;
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = k / 2;
    d.groups = groups;
    d.activation = act;
    return d;
}

// A growing NCHW activation: the data and its current shape.
struct Activations {
    std::vector<float> data;
    int n, c, h, w;
    int64_t size() const { return static_cast<int64_t>(n) * c * h * w; }
    Tensor snapshot() const { return Tensor::from_f32({n, c, h, w}, {data.data(), static_cast<size_t>(size())}); }
};

class MciImageEncoder final : public ImageEncoder {
public:
    MciImageEncoder(const ModelConfig& config, const WeightSource& w, kernels::Backend& backend)
        : config_(config), m_(config.image.mci) {
        const int c0 = m_.widths[0];
        stem_.push_back(make_conv(w, kInfer + "patch_embed.0", conv_desc(3, c0, 3, 2, 1, Activation::gelu), backend));
        stem_.push_back(make_conv(w, kInfer + "patch_embed.1", conv_desc(c0, c0, 3, 2, c0, Activation::gelu), backend));
        stem_.push_back(make_conv(w, kInfer + "patch_embed.2", conv_desc(c0, c0, 1, 1, 1, Activation::gelu), backend));
        for (int s = 0; s < 4; ++s) {
            const int c = m_.widths[s];
            for (int b = 0; b < m_.depths[s]; ++b) {
                const std::string name = kInfer + block_name(s, b);
                Block block;
                if (s < 3) {
                    block.mixer = make_conv(w, name + ".token_mixer", conv_desc(c, c, m_.mixer_kernel, 1, c, Activation::none), backend);
                } else {
                    block.qkv = backend.make_linear({c, 3 * c, Activation::none}, w.get(name + ".qkv.weight", {3 * c, c}),
                                                    w.get(name + ".qkv.bias", {3 * c}));
                    block.proj = backend.make_linear({c, c, Activation::none}, w.get(name + ".proj.weight", {c, c}),
                                                     w.get(name + ".proj.bias", {c}));
                }
                block.ffn = std::make_unique<ConvFfn>(w, name + ".ffn", ffn_shape(m_, s), backend);
                stages_[s].push_back(std::move(block));
            }
            if (s < 3) {
                const int cout = m_.widths[s + 1];
                const std::string name = kInfer + "network." + std::to_string(downsample_index(s)) + ".proj";
                Downsample d;
                d.large = make_conv(w, name + ".0", conv_desc(c, cout, m_.downsample_kernel, 2, c, Activation::none), backend);
                if (m_.downsample_se[s]) d.se = std::make_unique<SqueezeExcite>(w, name + ".0.se", cout, cout / m_.se_divisor);
                d.pointwise = make_conv(w, name + ".1", conv_desc(cout, cout, 1, 1, 1, Activation::gelu), backend);
                downsamples_[s] = std::move(d);
            }
        }
        const int c3 = m_.widths[3];
        cpe_ = make_conv(w, kInfer + "network.6", conv_desc(c3, c3, m_.cpe_kernel, 1, c3, Activation::none), backend);
        conv_exp_ = make_conv(w, kInfer + "conv_exp", conv_desc(c3, 2 * c3, 3, 1, c3, Activation::none), backend);
        conv_exp_se_ = std::make_unique<SqueezeExcite>(w, kInfer + "conv_exp.se", 2 * c3, 2 * c3 / m_.conv_exp_se_divisor);
        head_ = w.get(kInfer + "head.proj", {2 * c3, config.embed_dim});
    }

    Tensor encode(const Tensor& images, const ActivationHook& hook) const override {
        if (images.rank() != 4 || images.dim(1) != 3) {
            throw Error(ErrorCode::invalid_argument, "image batch must be [N, 3, H, W], got " + shape_to_string(images.shape()));
        }
        const int n = static_cast<int>(images.dim(0));
        Activations x{{images.f32(), images.f32() + images.elements()}, n, 3, static_cast<int>(images.dim(2)),
                      static_cast<int>(images.dim(3))};
        auto emit = [&](const std::string& name) {
            if (hook) hook(name, x.snapshot());
        };
        for (const auto& conv : stem_) apply(*conv, x);
        emit("image.stem");
        for (int s = 0; s < 4; ++s) {
            if (s == 3) {
                apply(*cpe_, x);
                emit("image.network.6");
            }
            for (const auto& block : stages_[s]) {
                if (block.mixer) {
                    apply(*block.mixer, x);
                } else {
                    attend(block, x);
                }
                block.ffn->add_to(x.data.data(), x.n, x.h, x.w);
            }
            emit("image.network." + std::to_string(stage_index(s)));
            if (s < 3) {
                const Downsample& d = downsamples_[s];
                apply(*d.large, x);
                if (d.se) d.se->apply(x.data.data(), x.n, static_cast<int64_t>(x.h) * x.w);
                kernels::gelu_inplace(x.data.data(), x.size());
                apply(*d.pointwise, x);
                emit("image.network." + std::to_string(downsample_index(s)));
            }
        }
        apply(*conv_exp_, x);
        conv_exp_se_->apply(x.data.data(), x.n, static_cast<int64_t>(x.h) * x.w);
        kernels::gelu_inplace(x.data.data(), x.size());
        emit("image.conv_exp");

        Tensor embeddings = Tensor::zeros_f32({n, config_.embed_dim});
        std::vector<float> pooled(x.c);
        for (int b = 0; b < n; ++b) {
            kernels::global_average_pool(x.data.data() + static_cast<int64_t>(b) * x.c * x.h * x.w, x.c,
                                         static_cast<int64_t>(x.h) * x.w, pooled.data());
            kernels::matmul_in_out(pooled.data(), 1, x.c, head_.f32(), config_.embed_dim,
                                   embeddings.f32() + static_cast<int64_t>(b) * config_.embed_dim);
        }
        return embeddings;
    }

private:
    struct Block {
        std::unique_ptr<kernels::Conv2d> mixer;             // RepMixer stages
        std::unique_ptr<kernels::Linear> qkv, proj;          // attention stage
        std::unique_ptr<ConvFfn> ffn;
    };
    struct Downsample {
        std::unique_ptr<kernels::Conv2d> large, pointwise;
        std::unique_ptr<SqueezeExcite> se;
    };

    static void apply(const kernels::Conv2d& conv, Activations& x) {
        const ConvDesc& d = conv.desc();
        Activations y{{}, x.n, d.out_channels, d.output_h(x.h), d.output_w(x.w)};
        y.data.resize(y.size());
        conv.run(x.data.data(), x.n, x.h, x.w, y.data.data());
        x = std::move(y);
    }

    // x += proj(MHSA(qkv(tokens))) with tokens = x viewed as [H·W, C] (row-major positions).
    void attend(const Block& block, Activations& x) const {
        const int c = x.c;
        const int64_t length = static_cast<int64_t>(x.h) * x.w;
        const int heads = c / m_.head_dim;
        std::vector<float> tokens(length * c), qkv(length * 3 * c), attended(length * c), projected(length * c);
        for (int b = 0; b < x.n; ++b) {
            float* image = x.data.data() + b * c * length;
            for (int ch = 0; ch < c; ++ch) {
                for (int64_t t = 0; t < length; ++t) tokens[t * c + ch] = image[ch * length + t];
            }
            block.qkv->run(tokens.data(), static_cast<int>(length), qkv.data());
            kernels::multi_head_attention(qkv.data(), static_cast<int>(length), heads, m_.head_dim, false, attended.data());
            block.proj->run(attended.data(), static_cast<int>(length), projected.data());
            for (int ch = 0; ch < c; ++ch) {
                for (int64_t t = 0; t < length; ++t) image[ch * length + t] += projected[t * c + ch];
            }
        }
    }

    ModelConfig config_;
    MciConfig m_;
    std::vector<std::unique_ptr<kernels::Conv2d>> stem_;
    std::vector<Block> stages_[4];
    Downsample downsamples_[3];
    std::unique_ptr<kernels::Conv2d> cpe_, conv_exp_;
    std::unique_ptr<SqueezeExcite> conv_exp_se_;
    Tensor head_;
};

}  // namespace

std::unique_ptr<ImageEncoder> make_mci_image_encoder(const ModelConfig& config, const WeightSource& weights,
                                                     kernels::Backend& backend) {
    return std::make_unique<MciImageEncoder>(config, weights, backend);
}

}  // namespace mclip
