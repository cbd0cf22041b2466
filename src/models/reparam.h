// Structural reparameterization: the exact algebra that turns MobileCLIP's training-form blocks
// (parallel conv branches, BatchNorm after everything) into single convolutions with bias.
// /work/shared/docs/mobileclip-architecture.md §2 and §6 give the formulas; each function below
// states the one it implements.
#pragma once

#include <string>
#include <vector>

#include "models/weights.h"
#include "tensor/tensor.h"

namespace mclip {

// BatchNorm in eval mode as an affine map: BN(x)_c = scale_c·x_c + shift_c with
// scale = γ / sqrt(σ² + 1e-5), shift = β − μ·scale.
struct BatchNormAffine {
    std::vector<float> scale;
    std::vector<float> shift;
};

// Reads <prefix>.{weight,bias,running_mean,running_var}.
BatchNormAffine read_batch_norm(const WeightSource& source, const std::string& prefix, int channels);

// A convolution with bias: weight [out, in/groups, kh, kw], bias [out].
struct FoldedConv {
    Tensor weight;
    Tensor bias;
};

// conv (no bias) followed by BN: W' = scale ⊙_out W, b' = shift.
FoldedConv fold_conv_batch_norm(const Tensor& weight, const BatchNormAffine& bn);
// Zero-pads a kernel symmetrically to kh × kw (a centred 1×1 or 3×3 inside a larger kernel).
Tensor pad_kernel(const Tensor& weight, int kh, int kw);
// The kernel that copies each channel through: I[o, o mod in_per_group, kh/2, kw/2] = 1.
Tensor identity_kernel(int channels, int in_per_group, int kh, int kw);
// into += other (weights and biases).
void add_folded(FoldedConv& into, const FoldedConv& other);
// Multiplies each output channel's weights and bias by per_channel[o] (layer scales).
void scale_folded(FoldedConv& conv, const std::vector<float>& per_channel);
// A linear layer [out, in] applied after a per-channel affine map of its input (a BatchNorm),
// W·(scale ⊙ x + shift) + b, as one layer: W' = W·diag(scale), b' = W·shift + b (an empty bias
// is 0).
FoldedConv fold_input_affine(const Tensor& weight, const Tensor& bias, const BatchNormAffine& input);

// The branches of a MobileOne block (§2.1) as the architecture defines them.
struct MobileOneDesc {
    int in_channels;
    int out_channels;
    int kernel_h;
    int kernel_w;
    int groups;
    bool scale_branch;  // 1×1 conv + BN, padded into the k×k kernel
    bool skip_branch;   // BN on the input (identity)
    int conv_branches = 1;
};

// Reads <prefix>.reparam_conv.{weight,bias} when the checkpoint is already folded; otherwise folds
// Σ_i BN_i(conv_k(x)) + BN_s(conv_1(x)) + BN_id(x) into one conv.
FoldedConv fold_mobileone(const WeightSource& source, const std::string& prefix, const MobileOneDesc& desc);

// Reads a per-channel tensor stored [C, 1, 1] (layer scales) as a vector.
std::vector<float> read_channel_vector(const WeightSource& source, const std::string& name, int channels);

}  // namespace mclip
