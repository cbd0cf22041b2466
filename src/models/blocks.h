// Building blocks shared by several architectures: the convolutional FFN (MCi stages and the
// S0 text RepMixer blocks), squeeze-excite gates, and the pre-norm transformer layer (text
// encoders and ViT-B). Each block has its fold (training form → inference form) beside its graph.
//
// Activations are NHWC / [rows, width] float32 (kernels.h). Blocks take their temporary buffers
// from a kernels::Workspace (slots 0–3, see WorkspaceSlot), so a steady stream of same-sized
// inputs allocates nothing. In bf16 precision the big layers compute in bfloat16 and the
// temporaries between them are stored in bfloat16; the residual stream stays float32.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/buffer.h"
#include "kernels/kernels.h"
#include "models/encoder.h"
#include "models/reparam.h"
#include "models/weights.h"

namespace mclip {

// Workspace slots: blocks use the first four for their temporaries (one block runs at a time);
// encoders number their own buffers from kFirstEncoderSlot.
enum WorkspaceSlot : int { kScratch0 = 0, kScratch1, kScratch2, kScratch3, kFirstEncoderSlot };

// Copies `name` from the checkpoint into `out` under `new_name`, checking its shape.
void copy_tensor(const WeightSource& checkpoint, const std::string& name, const Shape& shape, TensorMap& out,
                 const std::string& new_name);
void put_conv(TensorMap& out, const std::string& name, const FoldedConv& conv);

// ConvFFN: y = fc2(gelu(fc1(BN(dwconv(x))))), used inside a residual x + λ ⊙ ConvFFN(x).
// Inference form: dw (BN folded in, with bias), fc1, fc2 (λ folded in): <prefix>.{dw,fc1,fc2}.{weight,bias}.
struct ConvFfnShape {
    int channels;
    int hidden;
    int kernel_h;
    int kernel_w;
};
// Reads <train>.convffn.{conv.conv.weight, conv.bn, fc1, fc2} and the layer scale tensor.
void fold_conv_ffn(const WeightSource& checkpoint, const std::string& train, const std::string& layer_scale_name,
                   const ConvFfnShape& shape, TensorMap& out, const std::string& prefix);

class ConvFfn {
public:
    // typical_h × typical_w: the feature map size the block sees at the model's input size.
    ConvFfn(const WeightSource& weights, const std::string& prefix, const ConvFfnShape& shape, const GraphOptions& options,
            int typical_h, int typical_w);
    // x [n, h, w, C] += ConvFFN(x); the residual add is fused into fc2. Uses slots 0 and 1.
    void add_to(float* x, int n, int h, int w, kernels::Workspace& workspace) const;

private:
    ConvFfnShape shape_;
    DType narrow_;
    std::unique_ptr<kernels::DepthwiseFfn> block_;  // the whole block, where the backend has it in one operator
    std::unique_ptr<kernels::Conv2d> dw_, fc1_, fc2_;  // fc1_ and fc2_ where the backend has no fused ffn_
    std::unique_ptr<kernels::PointwiseFfn> ffn_;
};

// Squeeze-excite gate, x ⊙ sigmoid(W2·relu(W1·mean(x) + b1) + b2); inference names
// <prefix>.{fc1,fc2}.{weight,bias} with 1×1 conv weights [r, C, 1, 1] and [C, r, 1, 1].
class SqueezeExcite {
public:
    SqueezeExcite(const WeightSource& weights, const std::string& prefix, int channels, int reduced);
    // x [n, spatial, C] ⊙= gate, then GELU when `gelu` (one pass over x).
    void apply(float* x, int n, int64_t spatial, bool gelu) const;

private:
    int channels_, reduced_;
    Tensor w1_, b1_, w2_, b2_;
};

// Pre-norm transformer layer (§5.3): x += out_proj(MHA(LN1(x))); x += W2·gelu(W1·LN2(x)).
// Inference names are the reference's below <prefix>: pre_norm_mha.0 (LN1), pre_norm_mha.1.qkv_proj,
// pre_norm_mha.1.out_proj, pre_norm_ffn.0 (LN2), pre_norm_ffn.1 (W1), pre_norm_ffn.4 (W2).
struct TransformerShape {
    int width;
    int heads;
    int ffn;
    bool causal;
    MlpActivation activation = MlpActivation::gelu;
    float norm_eps = 1e-5f;
};
void fold_transformer_layer(const WeightSource& checkpoint, const std::string& train, const TransformerShape& shape,
                            TensorMap& out, const std::string& prefix);
// The same layer from open_clip's ResidualAttentionBlock names (ln_1, attn.in_proj_*,
// attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj) or timm's Block names (norm1, attn.qkv, attn.proj,
// norm2, mlp.fc1, mlp.fc2): the same tensors, q, k, v stacked by rows in both.
enum class TransformerNames { open_clip, timm };
void fold_transformer_layer(const WeightSource& checkpoint, TransformerNames names, const std::string& train,
                            const TransformerShape& shape, TensorMap& out, const std::string& prefix);

class TransformerLayer {
public:
    // typical_length: the sequence length the layer usually sees.
    TransformerLayer(const WeightSource& weights, const std::string& prefix, const TransformerShape& shape,
                     const GraphOptions& options, int typical_length);
    // x [n, length, width], updated in place; both residual adds are fused into the projections.
    // Uses slots 0–3.
    void run(float* x, int n, int length, kernels::Workspace& workspace) const;

private:
    TransformerShape shape_;
    DType narrow_;
    Tensor ln1_w_, ln1_b_, ln2_w_, ln2_b_;
    std::unique_ptr<kernels::Linear> qkv_, out_proj_;
    std::unique_ptr<kernels::PointwiseFfn> mlp_;   // the MLP in one operator where the backend has one
    std::unique_ptr<kernels::Linear> fc1_, fc2_;  // otherwise
    std::unique_ptr<kernels::Attention> attention_;
};

// LayerNorm weights read once: y = LN(x) over the last dimension.
struct LayerNormWeights {
    Tensor weight, bias;
    float eps = 1e-5f;
    LayerNormWeights() = default;
    LayerNormWeights(const WeightSource& weights, const std::string& prefix, int width, float eps = 1e-5f);
    void run(const float* x, int64_t rows, float* y) const;
};

}  // namespace mclip
