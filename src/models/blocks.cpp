#include "models/blocks.h"

#include <vector>

#include "kernels/ops.h"

namespace mclip {

void copy_tensor(const WeightSource& checkpoint, const std::string& name, const Shape& shape, TensorMap& out,
                 const std::string& new_name) {
    out[new_name] = checkpoint.get(name, shape).clone();
}

void put_conv(TensorMap& out, const std::string& name, const FoldedConv& conv) {
    out[name + ".weight"] = conv.weight;
    out[name + ".bias"] = conv.bias;
}

// ---------------------------------------------------------------------------------------------
// ConvFFN

void fold_conv_ffn(const WeightSource& checkpoint, const std::string& train, const std::string& layer_scale_name,
                   const ConvFfnShape& s, TensorMap& out, const std::string& prefix) {
    const std::string ffn = train + ".convffn";
    put_conv(out, prefix + ".dw",
             fold_conv_batch_norm(checkpoint.get(ffn + ".conv.conv.weight", {s.channels, 1, s.kernel_h, s.kernel_w}),
                                  read_batch_norm(checkpoint, ffn + ".conv.bn", s.channels)));
    copy_tensor(checkpoint, ffn + ".fc1.weight", {s.hidden, s.channels, 1, 1}, out, prefix + ".fc1.weight");
    copy_tensor(checkpoint, ffn + ".fc1.bias", {s.hidden}, out, prefix + ".fc1.bias");
    // The block's residual scale λ moves into fc2: λ ⊙ (W2·h + b2) = (λ ⊙ W2)·h + λ ⊙ b2.
    FoldedConv fc2{checkpoint.get(ffn + ".fc2.weight", {s.channels, s.hidden, 1, 1}).clone(),
                   checkpoint.get(ffn + ".fc2.bias", {s.channels}).clone()};
    scale_folded(fc2, read_channel_vector(checkpoint, layer_scale_name, s.channels));
    put_conv(out, prefix + ".fc2", fc2);
}

namespace {

std::unique_ptr<kernels::Conv2d> make_pointwise(const WeightSource& weights, const std::string& name, int in, int out,
                                                kernels::Activation activation, kernels::Backend& backend) {
    kernels::ConvDesc d;
    d.in_channels = in;
    d.out_channels = out;
    d.activation = activation;
    return backend.make_conv2d(d, weights.get(name + ".weight", {out, in, 1, 1}), weights.get(name + ".bias", {out}));
}

}  // namespace

ConvFfn::ConvFfn(const WeightSource& weights, const std::string& prefix, const ConvFfnShape& s, kernels::Backend& backend)
    : shape_(s) {
    kernels::ConvDesc dw;
    dw.in_channels = dw.out_channels = dw.groups = s.channels;
    dw.kernel_h = s.kernel_h;
    dw.kernel_w = s.kernel_w;
    dw.pad_h = s.kernel_h / 2;
    dw.pad_w = s.kernel_w / 2;
    dw_ = backend.make_conv2d(dw, weights.get(prefix + ".dw.weight", {s.channels, 1, s.kernel_h, s.kernel_w}),
                              weights.get(prefix + ".dw.bias", {s.channels}));
    fc1_ = make_pointwise(weights, prefix + ".fc1", s.channels, s.hidden, kernels::Activation::gelu, backend);
    fc2_ = make_pointwise(weights, prefix + ".fc2", s.hidden, s.channels, kernels::Activation::none, backend);
}

void ConvFfn::add_to(float* x, int n, int h, int w) const {
    const int64_t spatial = static_cast<int64_t>(h) * w;
    std::vector<float> a(static_cast<size_t>(n) * shape_.channels * spatial);
    std::vector<float> hidden(static_cast<size_t>(n) * shape_.hidden * spatial);
    dw_->run(x, n, h, w, a.data());
    fc1_->run(a.data(), n, h, w, hidden.data());
    fc2_->run(hidden.data(), n, h, w, a.data());
    kernels::add_inplace(x, a.data(), static_cast<int64_t>(a.size()));
}

// ---------------------------------------------------------------------------------------------
// Squeeze-excite

SqueezeExcite::SqueezeExcite(const WeightSource& weights, const std::string& prefix, int channels, int reduced)
    : channels_(channels), reduced_(reduced),
      w1_(weights.get(prefix + ".fc1.weight", {reduced, channels, 1, 1})),
      b1_(weights.get(prefix + ".fc1.bias", {reduced})),
      w2_(weights.get(prefix + ".fc2.weight", {channels, reduced, 1, 1})),
      b2_(weights.get(prefix + ".fc2.bias", {channels})) {}

void SqueezeExcite::apply(float* x, int n, int64_t spatial) const {
    for (int b = 0; b < n; ++b) {
        kernels::squeeze_excite_inplace(x + static_cast<int64_t>(b) * channels_ * spatial, channels_, spatial, w1_.f32(),
                                        b1_.f32(), reduced_, w2_.f32(), b2_.f32());
    }
}

// ---------------------------------------------------------------------------------------------
// Transformer layer

void fold_transformer_layer(const WeightSource& checkpoint, const std::string& train, const TransformerShape& s,
                            TensorMap& out, const std::string& prefix) {
    const int c = s.width;
    struct Entry {
        const char* name;
        Shape shape;
    };
    const Entry entries[] = {
        {".pre_norm_mha.0.weight", {c}},
        {".pre_norm_mha.0.bias", {c}},
        {".pre_norm_mha.1.qkv_proj.weight", {3 * c, c}},
        {".pre_norm_mha.1.qkv_proj.bias", {3 * c}},
        {".pre_norm_mha.1.out_proj.weight", {c, c}},
        {".pre_norm_mha.1.out_proj.bias", {c}},
        {".pre_norm_ffn.0.weight", {c}},
        {".pre_norm_ffn.0.bias", {c}},
        {".pre_norm_ffn.1.weight", {s.ffn, c}},
        {".pre_norm_ffn.1.bias", {s.ffn}},
        {".pre_norm_ffn.4.weight", {c, s.ffn}},
        {".pre_norm_ffn.4.bias", {c}},
    };
    for (const auto& e : entries) copy_tensor(checkpoint, train + e.name, e.shape, out, prefix + e.name);
}

LayerNormWeights::LayerNormWeights(const WeightSource& weights, const std::string& prefix, int width)
    : weight(weights.get(prefix + ".weight", {width})), bias(weights.get(prefix + ".bias", {width})) {}

void LayerNormWeights::run(const float* x, int64_t rows, float* y) const {
    kernels::layer_norm(x, rows, weight.elements(), weight.f32(), bias.f32(), 1e-5f, y);
}

namespace {

std::unique_ptr<kernels::Linear> make_linear(const WeightSource& weights, const std::string& name, int in, int out,
                                             kernels::Activation activation, kernels::Backend& backend) {
    return backend.make_linear({in, out, activation}, weights.get(name + ".weight", {out, in}),
                               weights.get(name + ".bias", {out}));
}

}  // namespace

TransformerLayer::TransformerLayer(const WeightSource& weights, const std::string& prefix, const TransformerShape& s,
                                   kernels::Backend& backend)
    : shape_(s) {
    const int c = s.width;
    ln1_w_ = weights.get(prefix + ".pre_norm_mha.0.weight", {c});
    ln1_b_ = weights.get(prefix + ".pre_norm_mha.0.bias", {c});
    ln2_w_ = weights.get(prefix + ".pre_norm_ffn.0.weight", {c});
    ln2_b_ = weights.get(prefix + ".pre_norm_ffn.0.bias", {c});
    qkv_ = make_linear(weights, prefix + ".pre_norm_mha.1.qkv_proj", c, 3 * c, kernels::Activation::none, backend);
    out_proj_ = make_linear(weights, prefix + ".pre_norm_mha.1.out_proj", c, c, kernels::Activation::none, backend);
    fc1_ = make_linear(weights, prefix + ".pre_norm_ffn.1", c, s.ffn, kernels::Activation::gelu, backend);
    fc2_ = make_linear(weights, prefix + ".pre_norm_ffn.4", s.ffn, c, kernels::Activation::none, backend);
}

void TransformerLayer::run(float* x, int n, int length) const {
    const int c = shape_.width;
    const int64_t rows = static_cast<int64_t>(n) * length;
    std::vector<float> normed(rows * c), qkv(rows * 3 * c), attended(rows * c), hidden(rows * shape_.ffn);
    kernels::layer_norm(x, rows, c, ln1_w_.f32(), ln1_b_.f32(), 1e-5f, normed.data());
    qkv_->run(normed.data(), static_cast<int>(rows), qkv.data());
    for (int b = 0; b < n; ++b) {
        kernels::multi_head_attention(qkv.data() + static_cast<int64_t>(b) * length * 3 * c, length, shape_.heads,
                                      c / shape_.heads, shape_.causal, attended.data() + static_cast<int64_t>(b) * length * c);
    }
    // x = x + out_proj(attended): the residual is fused into the projection's output.
    out_proj_->run(attended.data(), static_cast<int>(rows), normed.data(), x);
    std::copy(normed.begin(), normed.end(), x);
    kernels::layer_norm(x, rows, c, ln2_w_.f32(), ln2_b_.f32(), 1e-5f, normed.data());
    fc1_->run(normed.data(), static_cast<int>(rows), hidden.data());
    fc2_->run(hidden.data(), static_cast<int>(rows), normed.data(), x);
    std::copy(normed.begin(), normed.end(), x);
}

}  // namespace mclip
