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

ConvFfn::ConvFfn(const WeightSource& weights, const std::string& prefix, const ConvFfnShape& s, const GraphOptions& options,
                 int typical_h, int typical_w)
    : shape_(s), narrow_(options.narrow_type()) {
    kernels::Backend& backend = *options.backend;
    kernels::ConvDesc dw;
    dw.in_channels = dw.out_channels = dw.groups = s.channels;
    dw.kernel_h = s.kernel_h;
    dw.kernel_w = s.kernel_w;
    dw.pad_h = s.kernel_h / 2;
    dw.pad_w = s.kernel_w / 2;
    dw.output = narrow_;
    dw.precision = options.depthwise_precision();
    dw.typical_h = typical_h;
    dw.typical_w = typical_w;
    dw.name = prefix + ".dw";
    const Tensor dw_weight = weights.get(prefix + ".dw.weight", {s.channels, 1, s.kernel_h, s.kernel_w});
    const Tensor dw_bias = weights.get(prefix + ".dw.bias", {s.channels});
    const Tensor w1 = weights.get(prefix + ".fc1.weight", {s.hidden, s.channels, 1, 1}), b1 = weights.get(prefix + ".fc1.bias", {s.hidden});
    const Tensor w2 = weights.get(prefix + ".fc2.weight", {s.channels, s.hidden, 1, 1}), b2 = weights.get(prefix + ".fc2.bias", {s.channels});
    kernels::PointwiseFfnDesc fused;
    fused.channels = s.channels;
    fused.hidden = s.hidden;
    fused.activation = kernels::Activation::gelu;
    fused.precision = options.precision;
    fused.input = narrow_;
    fused.fc1_name = prefix + ".fc1";
    fused.fc2_name = prefix + ".fc2";
    block_ = backend.make_depthwise_ffn(dw, dw_weight, dw_bias, fused, w1, b1, w2, b2);
    if (block_) return;
    dw_ = backend.make_conv2d(dw, dw_weight, dw_bias);
    ffn_ = backend.make_pointwise_ffn(fused, w1, b1, w2, b2);
    if (ffn_) return;
    // fc1 (GELU fused) reads and writes narrow temporaries; fc2 adds its result into x.
    kernels::ConvDesc pointwise;
    pointwise.precision = options.precision;
    pointwise.input = narrow_;
    pointwise.typical_h = typical_h;
    pointwise.typical_w = typical_w;
    kernels::ConvDesc fc1 = pointwise;
    fc1.in_channels = s.channels;
    fc1.out_channels = s.hidden;
    fc1.activation = kernels::Activation::gelu;
    fc1.output = narrow_;
    fc1.name = prefix + ".fc1";
    fc1_ = backend.make_conv2d(fc1, w1, b1);
    kernels::ConvDesc fc2 = pointwise;
    fc2.in_channels = s.hidden;
    fc2.out_channels = s.channels;
    fc2.accumulate = true;
    fc2.name = prefix + ".fc2";
    fc2_ = backend.make_conv2d(fc2, w2, b2);
}

void ConvFfn::add_to(float* x, int n, int h, int w, kernels::Workspace& workspace) const {
    if (block_) {
        block_->add_to(x, n, h, w);
        return;
    }
    const int64_t positions = static_cast<int64_t>(n) * h * w;
    void* mixed = workspace.bytes(kScratch0, positions * shape_.channels * dtype_size(narrow_));
    dw_->run(x, n, h, w, mixed);
    if (ffn_) {
        ffn_->run(mixed, positions, x);
        return;
    }
    void* hidden = workspace.bytes(kScratch1, positions * shape_.hidden * dtype_size(narrow_));
    fc1_->run(mixed, n, h, w, hidden);
    fc2_->run(hidden, n, h, w, x);
}

// ---------------------------------------------------------------------------------------------
// Squeeze-excite

SqueezeExcite::SqueezeExcite(const WeightSource& weights, const std::string& prefix, int channels, int reduced)
    : channels_(channels), reduced_(reduced),
      w1_(weights.get(prefix + ".fc1.weight", {reduced, channels, 1, 1})),
      b1_(weights.get(prefix + ".fc1.bias", {reduced})),
      w2_(weights.get(prefix + ".fc2.weight", {channels, reduced, 1, 1})),
      b2_(weights.get(prefix + ".fc2.bias", {channels})) {}

void SqueezeExcite::apply(float* x, int n, int64_t spatial, bool gelu) const {
    thread_local std::vector<float> pooled, gates;
    pooled.resize(channels_);
    gates.resize(channels_);
    for (int b = 0; b < n; ++b) {
        float* image = x + static_cast<int64_t>(b) * spatial * channels_;
        kernels::global_average_pool(image, spatial, channels_, pooled.data());
        kernels::squeeze_excite_gates(pooled.data(), channels_, w1_.f32(), b1_.f32(), reduced_, w2_.f32(), b2_.f32(), gates.data());
        kernels::scale_channels(image, spatial, channels_, gates.data(), gelu);
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

void fold_transformer_layer(const WeightSource& checkpoint, TransformerNames names, const std::string& train,
                            const TransformerShape& s, TensorMap& out, const std::string& prefix) {
    const int c = s.width;
    const bool timm = names == TransformerNames::timm;
    struct Entry {
        std::string from;
        const char* to;
        Shape shape;
    };
    const Entry entries[] = {
        {timm ? ".norm1.weight" : ".ln_1.weight", ".pre_norm_mha.0.weight", {c}},
        {timm ? ".norm1.bias" : ".ln_1.bias", ".pre_norm_mha.0.bias", {c}},
        {timm ? ".attn.qkv.weight" : ".attn.in_proj_weight", ".pre_norm_mha.1.qkv_proj.weight", {3 * c, c}},
        {timm ? ".attn.qkv.bias" : ".attn.in_proj_bias", ".pre_norm_mha.1.qkv_proj.bias", {3 * c}},
        {timm ? ".attn.proj.weight" : ".attn.out_proj.weight", ".pre_norm_mha.1.out_proj.weight", {c, c}},
        {timm ? ".attn.proj.bias" : ".attn.out_proj.bias", ".pre_norm_mha.1.out_proj.bias", {c}},
        {timm ? ".norm2.weight" : ".ln_2.weight", ".pre_norm_ffn.0.weight", {c}},
        {timm ? ".norm2.bias" : ".ln_2.bias", ".pre_norm_ffn.0.bias", {c}},
        {timm ? ".mlp.fc1.weight" : ".mlp.c_fc.weight", ".pre_norm_ffn.1.weight", {s.ffn, c}},
        {timm ? ".mlp.fc1.bias" : ".mlp.c_fc.bias", ".pre_norm_ffn.1.bias", {s.ffn}},
        {timm ? ".mlp.fc2.weight" : ".mlp.c_proj.weight", ".pre_norm_ffn.4.weight", {c, s.ffn}},
        {timm ? ".mlp.fc2.bias" : ".mlp.c_proj.bias", ".pre_norm_ffn.4.bias", {c}},
    };
    for (const auto& e : entries) copy_tensor(checkpoint, train + e.from, e.shape, out, prefix + e.to);
}

LayerNormWeights::LayerNormWeights(const WeightSource& weights, const std::string& prefix, int width, float eps)
    : weight(weights.get(prefix + ".weight", {width})), bias(weights.get(prefix + ".bias", {width})), eps(eps) {}

void LayerNormWeights::run(const float* x, int64_t rows, float* y) const {
    kernels::layer_norm(x, rows, weight.elements(), weight.f32(), bias.f32(), eps, y);
}

namespace {

std::unique_ptr<kernels::Linear> make_linear(const WeightSource& weights, const std::string& name, kernels::LinearDesc d,
                                             kernels::Backend& backend) {
    d.name = name;
    return backend.make_linear(d, weights.get(name + ".weight", {d.out_features, d.in_features}),
                               weights.get(name + ".bias", {d.out_features}));
}

}  // namespace

TransformerLayer::TransformerLayer(const WeightSource& weights, const std::string& prefix, const TransformerShape& s,
                                   const GraphOptions& options, int typical_length)
    : shape_(s), narrow_(options.narrow_type()) {
    const int c = s.width;
    ln1_w_ = weights.get(prefix + ".pre_norm_mha.0.weight", {c});
    ln1_b_ = weights.get(prefix + ".pre_norm_mha.0.bias", {c});
    ln2_w_ = weights.get(prefix + ".pre_norm_ffn.0.weight", {c});
    ln2_b_ = weights.get(prefix + ".pre_norm_ffn.0.bias", {c});
    using kernels::Activation;
    // Every projection reads narrow temporaries; attention and fc1 write them, qkv writes float32
    // for attention's float32 products (kernels.h), out_proj and fc2 add into x.
    auto desc = [&](int in, int out, Activation activation, bool accumulate, DType output) {
        kernels::LinearDesc d;
        d.in_features = in;
        d.out_features = out;
        d.activation = activation;
        d.accumulate = accumulate;
        d.precision = options.precision;
        d.input = narrow_;
        d.output = output;
        d.typical_rows = typical_length;
        return d;
    };
    kernels::Backend& backend = *options.backend;
    qkv_ = make_linear(weights, prefix + ".pre_norm_mha.1.qkv_proj", desc(c, 3 * c, Activation::none, false, DType::f32), backend);
    attention_ = backend.make_attention({s.heads, c / s.heads, s.causal, options.precision, DType::f32, narrow_});
    out_proj_ = make_linear(weights, prefix + ".pre_norm_mha.1.out_proj", desc(c, c, Activation::none, true, DType::f32), backend);
    const Activation mlp = s.activation == MlpActivation::quick_gelu ? Activation::quick_gelu : Activation::gelu;
    const std::string fc1 = prefix + ".pre_norm_ffn.1", fc2 = prefix + ".pre_norm_ffn.4";
    kernels::PointwiseFfnDesc fused;
    fused.channels = c;
    fused.hidden = s.ffn;
    fused.activation = mlp;
    fused.precision = options.precision;
    fused.input = narrow_;
    fused.fc1_name = fc1;
    fused.fc2_name = fc2;
    const Tensor w1 = weights.get(fc1 + ".weight", {s.ffn, c}), b1 = weights.get(fc1 + ".bias", {s.ffn});
    const Tensor w2 = weights.get(fc2 + ".weight", {c, s.ffn}), b2 = weights.get(fc2 + ".bias", {c});
    mlp_ = backend.make_pointwise_ffn(fused, w1, b1, w2, b2);
    if (mlp_) return;
    kernels::LinearDesc first = desc(c, s.ffn, mlp, false, narrow_), second = desc(s.ffn, c, Activation::none, true, DType::f32);
    first.name = fc1;
    second.name = fc2;
    fc1_ = backend.make_linear(first, w1, b1);
    fc2_ = backend.make_linear(second, w2, b2);
}

void TransformerLayer::run(float* x, int n, int length, kernels::Workspace& workspace) const {
    const int c = shape_.width;
    const int64_t rows = static_cast<int64_t>(n) * length;
    const size_t narrow = dtype_size(narrow_);
    void* normed = workspace.bytes(kScratch0, rows * c * narrow);
    float* qkv = workspace.floats(kScratch1, rows * 3 * c);
    void* attended = workspace.bytes(kScratch2, rows * c * narrow);
    kernels::layer_norm(x, rows, c, ln1_w_.f32(), ln1_b_.f32(), shape_.norm_eps, normed, narrow_);
    qkv_->run(normed, static_cast<int>(rows), qkv);
    attention_->run(qkv, n, length, attended);
    out_proj_->run(attended, static_cast<int>(rows), x);
    kernels::layer_norm(x, rows, c, ln2_w_.f32(), ln2_b_.f32(), shape_.norm_eps, normed, narrow_);
    if (mlp_) {
        mlp_->run(normed, rows, x);
        return;
    }
    void* hidden = workspace.bytes(kScratch3, rows * shape_.ffn * narrow);
    fc1_->run(normed, static_cast<int>(rows), hidden);
    fc2_->run(hidden, static_cast<int>(rows), x);
}

}  // namespace mclip
