// Kernels: the operators the MobileCLIP graphs are made of, behind a small backend interface.
//
// Convolutions and linear layers carry almost all of the arithmetic, so they are objects created
// once per layer at model load by a Backend, which pre-packs the weights into the layout its
// kernels want. The portable reference backend is plain C++ and defines the expected results;
// faster backends (oneDNN) must match it within rounding. Cheap element-wise, normalization and
// attention operators are shared free functions (ops.h).
//
// Layouts: images are NHWC ("channels last") [n, h, w, c], contiguous; token sequences
// [n, length, c] are the same memory as an NHWC image of height 1, so the attention stage of the
// MCi encoders and the S0 text RepMixer use their activations without transposing. oneDNN has
// direct (non-im2col) kernels for every MobileCLIP convolution in this layout, in float32 and in
// bfloat16 on AMX (docs/performance.md has the comparison with NCHW and nChw16c).
//
// Buffers hold float32, or bfloat16 as raw uint16 bit patterns, as each layer's description says.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mclip::kernels {

// quick_gelu: x·sigmoid(1.702·x), OpenAI CLIP's approximation, which its checkpoints were trained with.
enum class Activation { none, relu, gelu, quick_gelu };

// How a layer's multiply-adds are done.
//   bf16: inputs and weights rounded to bfloat16, products accumulated in float32 (AMX or
//         AVX512-BF16 on CPUs that have them).
//   int8: weights rounded to signed 8-bit integers with one scale per output channel (its largest
//         |w| maps to 127), the input with one scale for the whole tensor, from the range the
//         layer's input reached on calibration data (input_range: range/127 per step, larger
//         values saturate); products summed exactly in int32 (AMX, AVX512-VNNI, or AVX2's
//         vpmaddubsw/vpmaddwd). Only layers that gain from it run int8 (compute_precision); the
//         others, and layers without a calibrated range, run in the backend's int8 companion
//         precision: bf16, or float32 where bf16 is not faster (Backend::int8_companion).
enum class Precision { f32, bf16, int8 };

const char* to_string(Precision precision);
// Every precision's name, in enum order: "f32", "bf16", "int8".
const std::vector<std::string>& precision_names();
// One of precision_names(); throws Error(invalid_argument) listing them otherwise.
Precision parse_precision(const std::string& name);

struct ConvDesc {
    int in_channels = 0;
    int out_channels = 0;
    int kernel_h = 1, kernel_w = 1;
    int stride_h = 1, stride_w = 1;
    int pad_h = 0, pad_w = 0;
    int groups = 1;
    Activation activation = Activation::none;
    // y += act(conv(x) + b) instead of y = ...: a residual added in the same pass over y.
    bool accumulate = false;
    Precision precision = Precision::f32;
    DType input = DType::f32;   // element type of x (f32 or bf16)
    DType output = DType::f32;  // element type of y (f32 or bf16)
    // The input the layer will usually see; backends prepare (pack weights) for it at creation.
    int typical_batch = 1, typical_h = 0, typical_w = 0;
    std::string name{};       // the layer's weight name: identifies it in calibration data and logs
    float input_range = 0;    // largest |x| seen on calibration data (int8); 0: not calibrated
    // int8 only, empty for none: SmoothQuant's factor s_c per input channel. The layer quantizes
    // x_c / s_c and multiplies it by W[:, c]·s_c, the same product, with the input's outlier
    // channels moved into the weights, which have a step per output channel. input_range is
    // then the range of x / s.
    std::vector<float> input_smoothing{};

    int output_h(int h) const { return (h + 2 * pad_h - kernel_h) / stride_h + 1; }
    int output_w(int w) const { return (w + 2 * pad_w - kernel_w) / stride_w + 1; }
    bool depthwise() const { return groups > 1 && groups == in_channels; }
    bool pointwise() const {
        return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0 && groups == 1;
    }
};

// y = act(conv(x, W) + b) (see ConvDesc::accumulate), W in PyTorch layout [out, in/groups, kh, kw].
// Depthwise with out = m·in ("channel multiplier" m): output channel o reads input channel o / m.
class Conv2d {
public:
    explicit Conv2d(const ConvDesc& desc);
    virtual ~Conv2d() = default;
    const ConvDesc& desc() const { return desc_; }
    // x: [n, h, w, in_channels]; y: [n, output_h(h), output_w(w), out_channels]. x and y must not overlap.
    void run(const void* x, int n, int h, int w, void* y) const;

protected:
    virtual void execute(const void* x, int n, int h, int w, void* y) const = 0;
    ConvDesc desc_;

private:
    const char* profile_label_;
};

struct LinearDesc {
    int in_features = 0;
    int out_features = 0;
    Activation activation = Activation::none;
    // y += act(x·Wᵀ + b) instead of y = ...: a residual added in the same pass over y.
    bool accumulate = false;
    Precision precision = Precision::f32;
    DType input = DType::f32;
    DType output = DType::f32;
    int typical_rows = 0;  // the row count usually seen; backends prepare for it at creation
    std::string name{};     // as ConvDesc
    float input_range = 0;  // as ConvDesc
    std::vector<float> input_smoothing{};  // as ConvDesc
};

// Whether a layer asked for int8 can use it: 8-bit products pay in dense convolutions with at
// least kMinInt8Channels input channels, in linear layers, and in depthwise convolutions with
// stride 1, one output channel per input channel and kernels of at least kMinInt8DepthwiseKernel
// on both sides (quantized per channel: calibration.h). In smaller depthwise kernels the pass that
// quantizes the input costs more than the products save (bench_ops, one thread of Zen 5, float32
// → int8: S0's 7×7 at 64×64 166 → 117 µs, its 3×3 58 → 85 µs, the text's 1×11 8 → 15 µs). An int8
// depthwise layer's centre tap multiplies the unquantized input: it is usually the largest (in a
// reparameterized RepMixer or RepCPE, the identity), so the input's quantization noise enters
// only through the other taps, whose weights get a finer step without it.
inline constexpr int kMinInt8Channels = 16;
inline constexpr int kMinInt8DepthwiseKernel = 5;
bool int8_capable(const ConvDesc& desc);
bool int8_capable(const LinearDesc& desc);
// The precision a layer actually computes in: int8 for int8-capable layers with a calibrated
// input range; the rest of an int8 model asks for bf16, which a backend whose int8_companion()
// is float32 computes in float32, except depthwise convolutions, which are bound by memory
// traffic and compute in float32.
Precision compute_precision(const ConvDesc& desc);
Precision compute_precision(const LinearDesc& desc);

// y[rows, out] = act(x[rows, in] · Wᵀ + b) (see LinearDesc::accumulate).
class Linear {
public:
    explicit Linear(const LinearDesc& desc) : desc_(desc) {}
    virtual ~Linear() = default;
    const LinearDesc& desc() const { return desc_; }
    // x and y must not overlap.
    void run(const void* x, int rows, void* y) const;

protected:
    virtual void execute(const void* x, int rows, void* y) const = 0;
    LinearDesc desc_;
};

struct AttentionDesc {
    int heads = 0;
    int head_dim = 0;
    bool causal = false;  // position i attends to j <= i only
    Precision precision = Precision::f32;
    DType input = DType::f32;   // element type of qkv
    DType output = DType::f32;  // element type of out
};

// Multi-head self-attention of packed projections (ops.h, multi_head_attention), for a batch of
// sequences: qkv [n, length, 3·heads·head_dim] → out [n, length, heads·head_dim]. Softmax is
// float32; in bf16 precision backends may compute the two products in float32 (oneDNN's kernels
// for these strided operands are faster in float32) or in bf16 with bf16 probabilities (AMX).
class Attention {
public:
    explicit Attention(const AttentionDesc& desc) : desc_(desc) {}
    virtual ~Attention() = default;
    const AttentionDesc& desc() const { return desc_; }
    void run(const void* qkv, int n, int length, void* out) const;

protected:
    virtual void execute(const void* qkv, int n, int length, void* out) const = 0;
    AttentionDesc desc_;
};

// The pointwise half of a ConvFFN block, or a transformer layer's MLP, in one operator:
// y += W2·act(W1·x + b1) + b2 at every position, x [positions, channels] in the desc's input
// type, y [positions, channels] float32, with the hidden layer [positions, hidden] kept in the
// cache a block of positions at a time instead of written out and read back. Optional
// (Backend::make_pointwise_ffn): where a backend has none, the graph runs the two 1×1
// convolutions or linear layers.
struct PointwiseFfnDesc {
    int channels = 0;
    int hidden = 0;
    Activation activation = Activation::gelu;
    Precision precision = Precision::f32;
    DType input = DType::f32;
    std::string fc1_name{}, fc2_name{};  // the two products' weight names: their calibration data, logs
    // int8: the calibration of the two products' inputs, as ConvDesc's input_range and
    // input_smoothing: x's (fc1) and the hidden layer's (fc2); 0 and empty where not calibrated.
    float input_range = 0;
    std::vector<float> input_smoothing{};
    float hidden_range = 0;
    std::vector<float> hidden_smoothing{};
};

class PointwiseFfn {
public:
    explicit PointwiseFfn(const PointwiseFfnDesc& desc) : desc_(desc) {}
    virtual ~PointwiseFfn() = default;
    const PointwiseFfnDesc& desc() const { return desc_; }
    // x and y must not overlap.
    void run(const void* x, int64_t positions, float* y) const;

protected:
    virtual void execute(const void* x, int64_t positions, float* y) const = 0;
    PointwiseFfnDesc desc_;
};

// A ConvFFN block in one operator: x += FFN(dw(x)), a depthwise convolution (no residual; its
// output of type depthwise.output, the FFN's input type) and the pointwise half after it. Where
// both compute in int8, the convolution can hand its output over as the levels the FFN quantizes
// its input to: one byte a value instead of two or four, and no pass that quantizes it, with
// results bit for bit those of the two operators. Optional (Backend::make_depthwise_ffn): where a
// backend has none, the graph runs the two.
class DepthwiseFfn {
public:
    DepthwiseFfn(const ConvDesc& depthwise, const PointwiseFfnDesc& ffn) : depthwise_(depthwise), ffn_(ffn) {}
    virtual ~DepthwiseFfn() = default;
    const ConvDesc& depthwise() const { return depthwise_; }
    const PointwiseFfnDesc& ffn() const { return ffn_; }
    // x [n, h, w, channels] += FFN(dw(x)). The operators inside record their own time (profile.h).
    void add_to(float* x, int n, int h, int w) const { execute(x, n, h, w); }

protected:
    virtual void execute(float* x, int n, int h, int w) const = 0;
    ConvDesc depthwise_;
    PointwiseFfnDesc ffn_;
};

// Two convolutions in one operator, the second reading the first's output: in the MCi stem, a
// dense convolution of the image and the depthwise one after it, whose shared map (S0: 128×128×64
// float32, 4 MiB) is then computed a few rows at a time in the cache instead of written out and
// read back. Optional (Backend::make_conv_pair): where a backend has none, the graph runs the two
// convolutions.
class ConvPair {
public:
    ConvPair(const ConvDesc& first, const ConvDesc& second) : first_(first), second_(second) {}
    virtual ~ConvPair() = default;
    const ConvDesc& first() const { return first_; }
    const ConvDesc& second() const { return second_; }
    // x: [n, h, w, first.in_channels]; y: [n, second.output_h(first.output_h(h)),
    // second.output_w(first.output_w(w)), second.out_channels]. x and y must not overlap.
    void run(const void* x, int n, int h, int w, void* y) const;

protected:
    virtual void execute(const void* x, int n, int h, int w, void* y) const = 0;
    ConvDesc first_, second_;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    // Whether layers of this precision run natively here (the reference backend emulates bf16).
    virtual bool native(Precision precision) const = 0;
    // What the layers of an int8 model that do not run int8 compute in, and the element type of
    // the buffers between them (Precision::int8): bf16 (natively, or emulated by the reference
    // backend, which so predicts the machines where bf16 is faster), or float32 where the backend
    // has no bf16 kernels on this CPU or they are not faster (bf16_is_faster).
    virtual Precision int8_companion() const { return Precision::bf16; }
    // Whether bf16 layers run faster than float32 ones here (fastest_precision): by default,
    // wherever they run natively.
    virtual bool bf16_is_faster() const { return native(Precision::bf16); }
    // weight [out, in/groups, kh, kw] and bias [out] (bias may be empty) are copied or packed;
    // the backend keeps no reference to them.
    virtual std::unique_ptr<Conv2d> make_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) = 0;
    // weight [out, in] (nn.Linear layout) and bias [out] (may be empty), copied or packed.
    virtual std::unique_ptr<Linear> make_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias) = 0;
    virtual std::unique_ptr<Attention> make_attention(const AttentionDesc& desc) = 0;
    // w1 [hidden, channels] and w2 [channels, hidden] (any trailing 1×1), biases [hidden] and
    // [channels], copied or packed; null where this backend has no fused kernel for `desc`.
    virtual std::unique_ptr<PointwiseFfn> make_pointwise_ffn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1,
                                                             const Tensor& w2, const Tensor& b2) {
        (void)desc, (void)w1, (void)b1, (void)w2, (void)b2;
        return nullptr;
    }
    // The depthwise layer's weight and bias as make_conv2d takes them and the FFN's as
    // make_pointwise_ffn does, copied or packed; null where this backend has no fused kernel for
    // the block.
    virtual std::unique_ptr<DepthwiseFfn> make_depthwise_ffn(const ConvDesc& depthwise, const Tensor& depthwise_weight,
                                                             const Tensor& depthwise_bias, const PointwiseFfnDesc& ffn, const Tensor& w1,
                                                             const Tensor& b1, const Tensor& w2, const Tensor& b2) {
        (void)depthwise, (void)depthwise_weight, (void)depthwise_bias, (void)ffn, (void)w1, (void)b1, (void)w2, (void)b2;
        return nullptr;
    }
    // The two layers' weights and biases as make_conv2d takes them, copied or packed; null where
    // this backend has no fused kernel for the pair.
    virtual std::unique_ptr<ConvPair> make_conv_pair(const ConvDesc& first, const Tensor& first_weight, const Tensor& first_bias,
                                                     const ConvDesc& second, const Tensor& second_weight, const Tensor& second_bias) {
        (void)first, (void)first_weight, (void)first_bias, (void)second, (void)second_weight, (void)second_bias;
        return nullptr;
    }
};

// What a backend is and does on this CPU and build. Every backend mclip knows is registered,
// whether or not it can run here, so that tools and tests can list them and say why one cannot.
struct BackendEntry {
    std::string name;
    bool available = false;               // compiled in and usable on this CPU
    std::string unavailable_reason;       // for a person, when not available
    std::vector<Precision> precisions;    // the precisions it computes, natively or emulated
    std::vector<Precision> native_precisions;   // those of them at hardware speed here
    std::vector<std::string> instruction_sets;  // what its kernels use on this CPU ("AVX2", "AVX512-BF16", "AMX", ...)
    Backend* backend = nullptr;           // null when not available
    bool runs(Precision precision) const;
};

// In order of preference: the first available one is the default.
const std::vector<BackendEntry>& registered_backends();
// The portable reference backend (always available).
Backend& reference_backend();
// The fastest backend available on this CPU and build ("reference" if nothing better).
Backend& default_backend();
// Looks a registered backend up by name, or "auto" (default_backend); throws
// Error(invalid_argument) for an unknown name and Error(unsupported), with the reason, for one
// that cannot run here.
Backend& backend_by_name(const std::string& name);

// The fastest precision that keeps the accuracy bounds (bf16: embeddings within 2e-2 of float32,
// tests/models/test_encoders.cpp) on this backend and CPU: bf16 where it is faster
// (Backend::bf16_is_faster), else f32.
Precision fastest_precision(const Backend& backend);

// Threads. Kernels run on OpenMP teams as large as the calling thread's OpenMP thread count
// (its nthreads ICV, which belongs to that thread alone); oneDNN fixes a primitive's team size
// when it creates it, so the oneDNN backend keeps one primitive per thread count it is called
// with. A model applies its own count around each call (ThreadCountScope), whatever thread
// calls it.

// The thread count `requested` stands for: itself, or one per core available to the process for 0.
int resolve_thread_count(int requested);
// The calling thread's current thread count.
int num_threads();

// Sets the calling thread's thread count for the scope's lifetime and restores the previous one
// after; other threads are unaffected.
class ThreadCountScope {
public:
    explicit ThreadCountScope(int threads);
    ~ThreadCountScope();
    ThreadCountScope(const ThreadCountScope&) = delete;
    ThreadCountScope& operator=(const ThreadCountScope&) = delete;

private:
    int previous_;
};

// Checks a layer description and its weights against each other (throws Error(internal)).
void check_conv(const ConvDesc& desc, const Tensor& weight, const Tensor& bias);
void check_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias);

}  // namespace mclip::kernels
