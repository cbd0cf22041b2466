// Kernels: the operators the MobileCLIP graphs are made of, behind a small backend interface.
//
// Convolutions and linear layers carry almost all of the arithmetic, so they are objects created
// once per layer at model load by a Backend, which may pre-pack the weights into the layout its
// kernels want. The portable reference backend is plain C++ and defines the expected results;
// faster backends (oneDNN) must match it within float32 rounding and fall back to it for
// anything they do not support. Cheap element-wise and normalization operators are shared free
// functions (ops.h).
//
// Layouts: images are NCHW float32, token sequences [N, L, C] float32, all contiguous.
#pragma once

#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace mclip::kernels {

enum class Activation { none, relu, gelu };

struct ConvDesc {
    int in_channels = 0;
    int out_channels = 0;
    int kernel_h = 1, kernel_w = 1;
    int stride_h = 1, stride_w = 1;
    int pad_h = 0, pad_w = 0;
    int groups = 1;
    Activation activation = Activation::none;

    int output_h(int h) const { return (h + 2 * pad_h - kernel_h) / stride_h + 1; }
    int output_w(int w) const { return (w + 2 * pad_w - kernel_w) / stride_w + 1; }
};

// y = act(conv(x, W) + b), W in PyTorch layout [out, in/groups, kh, kw].
class Conv2d {
public:
    explicit Conv2d(const ConvDesc& desc) : desc_(desc) {}
    virtual ~Conv2d() = default;
    const ConvDesc& desc() const { return desc_; }
    // x: [n, in_channels, h, w]; y: [n, out_channels, output_h(h), output_w(w)].
    virtual void run(const float* x, int n, int h, int w, float* y) const = 0;

protected:
    ConvDesc desc_;
};

struct LinearDesc {
    int in_features = 0;
    int out_features = 0;
    Activation activation = Activation::none;
};

// y[rows, out] = act(x[rows, in] · Wᵀ + b) (+ residual[rows, out] when given, added after act).
class Linear {
public:
    explicit Linear(const LinearDesc& desc) : desc_(desc) {}
    virtual ~Linear() = default;
    const LinearDesc& desc() const { return desc_; }
    virtual void run(const float* x, int rows, float* y, const float* residual = nullptr) const = 0;

protected:
    LinearDesc desc_;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    // weight [out, in/groups, kh, kw] and bias [out] (bias may be empty) are copied or packed.
    virtual std::unique_ptr<Conv2d> make_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) = 0;
    // weight [out, in] (nn.Linear layout) and bias [out] (may be empty).
    virtual std::unique_ptr<Linear> make_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias) = 0;
};

// The portable reference backend (always available).
Backend& reference_backend();
// The fastest backend available on this CPU and build ("reference" if nothing better).
Backend& default_backend();
// Looks a backend up by name ("reference", "onednn"); throws Error(unsupported) if unavailable.
Backend& backend_by_name(const std::string& name);

// Sets the number of threads kernels may use (0 = one per core).
void set_num_threads(int threads);
int num_threads();

}  // namespace mclip::kernels
