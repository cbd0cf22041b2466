// The oneDNN backend: convolutions and matrix multiplies from oneDNN (Debian's libdnnl, 2.6),
// which picks AVX2 / AVX-512 / AMX kernels for the CPU it runs on.
//
// Activations are NHWC (kernels.h): for that layout oneDNN 2.6 has direct kernels for every
// MobileCLIP convolution (brgconv_1x1 for pointwise, brdgmm_dw for depthwise, jit for the
// channel-multiplier-2 depthwise, brgconv for the 3-channel stem), and its AMX bf16 kernels.
// Each layer packs its weights once, at creation, into the layout the kernel chosen for the
// layer's typical input wants, and keeps one primitive per input shape and thread count (a
// oneDNN primitive runs with the team size it was created for, kernels.h). Bias, activation and
// the residual add (a "sum" post-op: y += ...) are fused into the primitive.
//
// int8 layers (kernels.h) quantize their input into s8 (ops.h, quantize_channels_s8), run the
// s8 × s8 primitive (AMX, VNNI or AVX2) and dequantize in its output scales, one per output channel:
// in_step · w_step[o]. oneDNN 2.x adds the bias before those scales, so it is stored divided by
// them.
//
// oneDNN 2.x API: an operation descriptor (convolution_forward::desc, matmul::desc) comes first,
// then the primitive descriptor built from it.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "common/error.h"
#include "common/log.h"
#include "kernels/amx/attention.h"
#include "kernels/amx/pointwise_ffn.h"
#include "kernels/avx2/depthwise_conv.h"
#include "kernels/avx512/attention.h"
#include "kernels/avx512/bf16_pointwise_conv.h"
#include "kernels/avx512/conv_pair.h"
#include "kernels/avx512/depthwise_conv.h"
#include "kernels/avx512/int8_depthwise_conv.h"
#include "kernels/avx512/int8_depthwise_ffn.h"
#include "kernels/avx512/int8_pointwise_ffn.h"
#include "kernels/buffer.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

namespace mclip::kernels {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// One stream per thread: a stream must not be used by two threads at once.
dnnl::stream& thread_stream() {
    thread_local dnnl::stream stream(cpu_engine());
    return stream;
}

// Per-thread staging memory for inputs converted to the compute type and outputs converted back,
// and the primitives' scratchpads.
void* thread_scratch(int slot, size_t bytes) {
    thread_local Workspace scratch;
    return scratch.bytes(slot, bytes);
}
constexpr int kScratchpadSlot = 6;

// Every primitive takes its temporary memory from the calling thread (a "user" scratchpad).
// oneDNN 2.6's own ("library") scratchpad is not safe for a primitive run by several threads at
// once: concurrent calls on one model crashed inside oneDNN with it.
dnnl::primitive_attr with_user_scratchpad(dnnl::primitive_attr attr = {}) {
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

void run_primitive(const dnnl::primitive& primitive, const memory::desc& scratchpad, std::unordered_map<int, memory> args) {
    if (scratchpad.get_size() > 0) {
        args.insert({DNNL_ARG_SCRATCHPAD, memory(scratchpad, cpu_engine(), thread_scratch(kScratchpadSlot, scratchpad.get_size()))});
    }
    primitive.execute(thread_stream(), args);
}

dt to_dnnl(DType type) { return type == DType::bf16 ? dt::bf16 : dt::f32; }
dt compute_type(Precision precision) {
    switch (precision) {
        case Precision::f32: return dt::f32;
        case Precision::bf16: return dt::bf16;
        case Precision::int8: return dt::s8;
    }
    return dt::f32;
}

dnnl::post_ops make_post_ops(Activation activation, bool accumulate) {
    dnnl::post_ops ops;
    if (activation == Activation::gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    if (activation == Activation::relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    // swish(x; α) = x·sigmoid(α·x), which is quick_gelu at α = 1.702.
    if (activation == Activation::quick_gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.702f, 0.0f);
    if (accumulate) ops.append_sum(1.0f);
    return ops;
}

// A float32 copy of a weight tensor (converted when it is stored narrower), or a view of it.
Tensor f32_view(const Tensor& t) { return t.dtype() == DType::f32 ? t : t.to_f32(); }

// The weights a layer computes with, as float32: smoothed per input channel in int8 (ConvDesc::
// input_smoothing), a view of `weight` otherwise.
template <typename Desc>
Tensor layer_weights(const Tensor& weight, const Desc& desc, Precision precision) {
    if (precision == Precision::int8 && !desc.input_smoothing.empty()) return smooth_input_channels(weight, desc.input_smoothing);
    return f32_view(weight);
}

// How one input shape runs: the primitive and the conversions around it.
struct Plan {
    dnnl::primitive primitive;
    memory weights;                      // packed for this primitive (shared between plans when equal)
    memory::desc src_md;                 // what the primitive reads
    memory::desc dst_md;                 // what the primitive writes
    memory::desc scratchpad_md;
    std::optional<dnnl::reorder> to_compute_type;  // x → src_md when x's type differs (not to s8)
    // x → s8 by quantize_channels_s8 with these steps, one per channel: the layer's own (layers
    // hold a mutex and so never move); null when x is not quantized.
    const std::vector<float>* quantize_inverse_steps = nullptr;
    memory::desc user_src_md;
    memory::desc to_compute_type_scratchpad_md;
    bool staged_output = false;          // dst is a float32 scratch, stored into y afterwards
    int64_t output_count = 0;
    std::string kernel;                  // oneDNN's name for the implementation, for the log
};

// Whether oneDNN's int8 kernels here multiply without VNNI (AVX2, or AVX-512 before VNNI): they
// then halve s8 weights, so the weights are quantized onto even levels, which halve exactly
// (ops.h, quantize_rows_s8). On the AVX2 machine this took every encoder's int8 error on the
// fixtures down by 10–33% (docs/performance.md).
bool int8_weights_halved() {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa != dnnl::cpu_isa::avx2_vnni && isa < dnnl::cpu_isa::avx512_core_vnni;
}

// What convolutions and matrix multiplies share: weights packed once, a bias, a plan per shape.
class PackedWeights {
public:
    // plain: the weights [channels, ...] as float32 in a oneDNN-describable layout (plain_md), kept
    // only until the first plan exists. In int8 they are quantized per output channel first, with
    // input_step the step of the layer's quantized input.
    PackedWeights(memory::desc plain_md, Tensor plain, const Tensor& bias, int channels, Precision precision, float input_step)
        : plain_md_(plain_md), plain_(std::move(plain)) {
        bias_values_ = bias.empty() ? Tensor::zeros_f32({channels}) : f32_view(bias).clone();
        if (precision != Precision::int8) return;
        const RowQuantized q = quantize_rows_s8(plain_.f32(), channels, plain_.elements() / channels, int8_weights_halved());
        plain_ = Tensor::zeros(DType::i8, plain_.shape());
        std::copy(q.values.begin(), q.values.end(), static_cast<int8_t*>(plain_.data()));
        const auto& strides = plain_md.data.format_desc.blocking.strides;
        plain_md_ = memory::desc(plain_md.dims(), dt::s8, memory::dims(strides, strides + plain_md.data.ndims));
        for (int o = 0; o < channels; ++o) {
            output_scales_.push_back(input_step * q.steps[o]);
            bias_values_.f32()[o] /= output_scales_.back();
        }
    }

    const float* bias() const { return bias_values_.f32(); }
    // int8: the scale from int32 sums to output values, per output channel; empty otherwise.
    const std::vector<float>& output_scales() const { return output_scales_; }

    // Called by layers that pack lazily (no typical input given): the plain weights must then
    // outlive the caller's tensor.
    void keep_private_copy() { plain_ = plain_.clone(); }

    // Weights in the layout `wanted`: reordered from the plain copy (first plan) or from an
    // already packed copy (a later shape whose kernel wants another layout).
    memory weights_for(const memory::desc& wanted) {
        for (const memory& m : packed_) {
            if (m.get_desc() == wanted) return m;
        }
        memory source = packed_.empty() ? memory(plain_md_, cpu_engine(), plain_.data()) : packed_.front();
        memory packed(wanted, cpu_engine());
        const dnnl::reorder::primitive_desc pd(source, packed, with_user_scratchpad());
        run_primitive(dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, packed}});
        thread_stream().wait();
        packed_.push_back(packed);
        plain_ = Tensor();  // the packed copies are all that is needed from now on
        return packed;
    }

private:
    memory::desc plain_md_;
    Tensor plain_;
    Tensor bias_values_;
    std::vector<float> output_scales_;
    std::vector<memory> packed_;
};

// The primitive's attributes: post-ops, and for int8 the per-output-channel dequantizing scales
// (dimension 1 of a convolution's [n, c, h, w] and of a matmul's [rows, out]).
dnnl::primitive_attr layer_attr(const PackedWeights& weights, Activation activation, bool accumulate) {
    dnnl::primitive_attr attr = with_user_scratchpad();
    attr.set_post_ops(make_post_ops(activation, accumulate));
    if (!weights.output_scales().empty()) attr.set_output_scales(1 << 1, weights.output_scales());
    return attr;
}

void apply_gelu(void* y, int64_t count, DType type) {
    if (type == DType::bf16) {
        gelu_inplace_bf16(static_cast<uint16_t*>(y), count);
    } else {
        gelu_inplace(static_cast<float*>(y), count);
    }
}

void run_plan(const Plan& plan, const memory& bias, const void* x, void* y, DType y_type, bool accumulate) {
    dnnl::stream& stream = thread_stream();
    void* src = const_cast<void*>(x);
    if (plan.quantize_inverse_steps) {
        src = thread_scratch(0, plan.src_md.get_size());
        const int channels = static_cast<int>(plan.quantize_inverse_steps->size());
        const int64_t positions = static_cast<int64_t>(plan.src_md.get_size()) / channels;
        quantize_channels_s8(x, plan.user_src_md.data_type() == dt::bf16 ? DType::bf16 : DType::f32, positions, channels,
                             plan.quantize_inverse_steps->data(), static_cast<int8_t*>(src));
    } else if (plan.to_compute_type) {
        src = thread_scratch(0, plan.src_md.get_size());
        memory user(plan.user_src_md, cpu_engine(), const_cast<void*>(x));
        memory converted(plan.src_md, cpu_engine(), src);
        run_primitive(*plan.to_compute_type, plan.to_compute_type_scratchpad_md, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, converted}});
    }
    void* dst = plan.staged_output ? thread_scratch(1, plan.dst_md.get_size()) : y;
    run_primitive(plan.primitive, plan.scratchpad_md,
                  {{DNNL_ARG_SRC, memory(plan.src_md, cpu_engine(), src)},
                   {DNNL_ARG_WEIGHTS, plan.weights},
                   {DNNL_ARG_BIAS, bias},
                   {DNNL_ARG_DST, memory(plan.dst_md, cpu_engine(), dst)}});
    stream.wait();
    if (plan.staged_output) store_f32(static_cast<const float*>(dst), plan.output_count, y, y_type, accumulate);
}

// Fills in the input conversion of a plan whose primitive reads src_md while x is `user_type`:
// an s8 input is quantized by quantize_channels_s8 with the layer's inverse steps (one per
// channel: dimension 1, the innermost of every layout here); other types by a reorder.
void plan_input(Plan& plan, const memory::dims& dims, tag layout, dt user_type, const std::vector<float>& inverse_steps) {
    plan.user_src_md = memory::desc(dims, user_type, layout);
    if (user_type == plan.src_md.data_type()) return;
    if (plan.src_md.data_type() == dt::s8) {
        plan.quantize_inverse_steps = &inverse_steps;
        return;
    }
    const dnnl::reorder::primitive_desc pd(cpu_engine(), plan.user_src_md, cpu_engine(), plan.src_md, with_user_scratchpad());
    plan.to_compute_type = dnnl::reorder(pd);
    plan.to_compute_type_scratchpad_md = pd.scratchpad_desc();
}

bool bf16_is_native() {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

// Whether bf16 layers run faster than float32 ones: on AMX tiles several times faster; on AMD's
// Zen 4 and 5 vdpbf16ps has twice the FMA rate (issue 17's Zen 5 table: S0 image bf16 17.1
// against 20.9 ms); on Intel cores without AMX it only matches the two FMA pipes, and oneDNN
// 2.6's bf16 kernels lose to float32 (the AMX Xeon with oneDNN capped at AVX512_CORE_BF16: S0
// image 24.7 against 15.7 ms; S0 image int8 with float32 beside int8 instead of bf16 −8%,
// MobileCLIP-B image −4%; docs/performance.md).
bool bf16_beats_f32() {
    return bf16_is_native() && (dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_amx || __builtin_cpu_is("amd"));
}

// oneDNN's int8 kernels: AVX2 (vpmaddubsw + vpmaddwd), AVX512-VNNI and AMX (vpdpbusd, tiles).
// (The enum's values are bit sets; avx2_vnni, numerically above the AVX-512 levels, has AVX2.)
bool int8_is_native() { return dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx2; }

// The precision a layer computes in here: compute_precision's, except that the bf16 of an int8
// model's other layers is float32 where bf16 is not faster (Backend::int8_companion).
template <typename Desc>
Precision layer_precision(const Desc& desc) {
    const Precision precision = compute_precision(desc);
    return precision == Precision::bf16 && desc.precision == Precision::int8 && !bf16_beats_f32() ? Precision::f32 : precision;
}

// Whether oneDNN runs its AVX-512 kernels here. Below them (AVX2 machines) oneDNN 2.6 lacks two
// kernels MobileCLIP needs (docs/performance.md, bench_ops, two AVX2 threads):
// - a matmul that keeps packed weights: gemm:jit repacks the plain weights on every call (34–45
//   GMAC/s on the text encoder's layers) while the 1×1 convolution jit_1x1:avx2 keeps them packed
//   (60–75 GMAC/s on the same products), so a linear layer runs as a 1×1 convolution over a
//   [1, in, 1, rows] NHWC image, the same memory as x;
// - a direct depthwise kernel for 1×k kernels over sequences (the text RepMixer's 1×11 runs as
//   im2col + gemm:jit at 0.6 GMAC/s) and a fast one for channel multiplier 2: the hand-written
//   AVX2 kernel (kernels/avx2) takes those, 21× and 1.3–1.6× faster; oneDNN's jit_dw keeps the
//   square multiplier-1 kernels, where it is ahead.
bool has_avx512_kernels() {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa != dnnl::cpu_isa::avx2_vnni && isa >= dnnl::cpu_isa::avx512_core;
}

// With oneDNN 2.6's AMX convolution kernels a separate vectorized GELU pass over the output is
// 5–25% faster than the fused GELU post-op (docs/performance.md), so bf16 convolutions apply it
// afterwards; possible when no residual add follows the GELU. So do int8 convolutions: on AVX2
// the post-op's erf costs about as much as the 1×1 convolution's products at 64 input channels
// (1.3 against 0.5 ms for S0's 64→192 at 64×64), and the separate pass took 2–9% off the S0 and
// S2 image encoders. So do float32 convolutions where oneDNN runs AVX-512: its GELU post-op's
// erf cost 0.56 ns per value on one thread of the AMX Xeon (S0's fc1 at 64×64: 937 µs, of which
// ~440 µs GELU), and the separate pass took 6% off the S0 image encoder. So do linear layers
// (matmuls; 1×1 convolutions on AVX2) since GELU has had its AVX-512 form: AMX Xeon, text
// encoders at batch 1, S0 bf16 −5%, int8 −4%, S2 int8 −3%, S0 int8 at batch 100 −3%, MobileCLIP-B
// image int8 −4%, float32 within 2% either way. On AVX2 in float32 the post-op stays.
bool gelu_after_kernel(Precision precision, Activation activation, bool accumulate) {
    return (precision == Precision::bf16 || precision == Precision::int8 || has_avx512_kernels()) && activation == Activation::gelu && !accumulate;
}

bool avx2_depthwise_is_faster(const ConvDesc& desc) {
    if (has_avx512_kernels() || !avx2::cpu_supported() || !avx2::handles_depthwise(desc)) return false;
    return desc.kernel_h == 1 || desc.out_channels != desc.in_channels;
}

// Where oneDNN runs its AVX-512 kernels, the hand-written AVX-512 depthwise kernel takes every
// depthwise layer it is built for (kernels/avx512/depthwise_conv.h has the comparison).
bool avx512_depthwise_is_faster(const ConvDesc& desc) {
    return has_avx512_kernels() && avx512::cpu_supported() && avx512::handles_depthwise(desc);
}

// Below AMX, where the CPU has AVX512-BF16, the hand-written bf16 1×1 kernel takes the 1×1
// layers of a float32 input that compute in bf16 (kernels/avx512/bf16_pointwise_conv.h has the
// comparison): the MCi stem's and downsampling layers' in int8 and bf16 models.
bool avx512_bf16_pointwise_is_faster(const ConvDesc& desc) {
    return has_avx512_kernels() && dnnl::get_effective_cpu_isa() < dnnl::cpu_isa::avx512_core_amx && avx512::bf16_supported() &&
           layer_precision(desc) == Precision::bf16 && avx512::handles_bf16_pointwise(desc);
}

class OnednnConv2d final : public Conv2d {
public:
    OnednnConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias)
        : Conv2d(desc), precision_(layer_precision(desc)),
          multiplier_(desc.depthwise() ? desc.out_channels / desc.in_channels : 1),
          separate_gelu_(gelu_after_kernel(precision_, desc.activation, desc.accumulate)),
          kernel_desc_(expanded(desc, multiplier_)),
          input_inverse_steps_(precision_ == Precision::int8
                                     ? int8_inverse_steps(desc.input_range, desc.input_smoothing, kernel_desc_.in_channels)
                                     : std::vector<float>()),
          weights_(plain_weight_md(kernel_desc_), layer_weights(weight, desc, precision_), bias, desc.out_channels, precision_,
                   int8_step(desc.input_range)),
          bias_(memory::desc({desc.out_channels}, dt::f32, tag::x), cpu_engine(), const_cast<float*>(weights_.bias())) {
        if (desc.typical_h > 0 && desc.typical_w > 0) {
            plan(desc.typical_batch, desc.typical_h, desc.typical_w);
        } else {
            weights_.keep_private_copy();
        }
    }

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        run_convolution(x, n, h, w, y);
        if (separate_gelu_) apply_gelu(y, static_cast<int64_t>(n) * desc_.output_h(h) * desc_.output_w(w) * desc_.out_channels, desc_.output);
    }

private:
    void run_convolution(const void* x, int n, int h, int w, void* y) const {
        if (multiplier_ > 1) {
            const size_t element = dtype_size(desc_.input);
            void* expanded = thread_scratch(2, static_cast<size_t>(n) * h * w * desc_.out_channels * element);
            const int64_t positions = static_cast<int64_t>(n) * h * w;
            if (desc_.input == DType::bf16) {
                repeat_channels(static_cast<const uint16_t*>(x), positions, desc_.in_channels, multiplier_, static_cast<uint16_t*>(expanded));
            } else {
                repeat_channels(static_cast<const float*>(x), positions, desc_.in_channels, multiplier_, static_cast<float*>(expanded));
            }
            x = expanded;
        }
        run_plan(plan(n, h, w), bias_, x, y, desc_.output, desc_.accumulate);
    }

    // oneDNN 2.6 runs a depthwise convolution with a channel multiplier m > 1 as a generic
    // grouped convolution at ~1 GMAC/s. Repeating each input channel m times first turns it into
    // a plain depthwise convolution (output channel o reads expanded channel o = input o / m, the
    // same weights), which runs on the fast depthwise kernel for the cost of one copy.
    template <typename T>
    static void repeat_channels(const T* x, int64_t positions, int channels, int m, T* y) {
#pragma omp parallel for schedule(static) if (positions * channels * m > (1 << 17))
        for (int64_t p = 0; p < positions; ++p) {
            const T* from = x + p * channels;
            T* to = y + p * channels * m;
            for (int c = 0; c < channels; ++c) {
                for (int j = 0; j < m; ++j) to[c * m + j] = from[c];
            }
        }
    }

    static memory::dims weight_dims(const ConvDesc& d) {
        if (d.groups == 1) return {d.out_channels, d.in_channels, d.kernel_h, d.kernel_w};
        return {d.groups, d.out_channels / d.groups, d.in_channels / d.groups, d.kernel_h, d.kernel_w};
    }
    static memory::desc plain_weight_md(const ConvDesc& d) {
        return memory::desc(weight_dims(d), dt::f32, d.groups == 1 ? tag::oihw : tag::goihw);
    }

    dnnl::convolution_forward::primitive_desc describe(int n, int h, int w, dt dst_type, bool fused_sum) const {
        const ConvDesc& d = kernel_desc_;
        const dt type = compute_type(precision_);
        const memory::desc src_md({n, d.in_channels, h, w}, type, tag::nhwc);
        const memory::desc dst_md({n, d.out_channels, d.output_h(h), d.output_w(w)}, dst_type, tag::nhwc);
        const memory::desc weight_any(weight_dims(d), type, tag::any);
        const dnnl::convolution_forward::desc op(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                 src_md, weight_any, bias_.get_desc(), dst_md, {d.stride_h, d.stride_w},
                                                 {d.pad_h, d.pad_w}, {d.pad_h, d.pad_w});
        const dnnl::primitive_attr attr = layer_attr(weights_, separate_gelu_ ? Activation::none : d.activation, fused_sum);
        return dnnl::convolution_forward::primitive_desc(op, attr, cpu_engine());
    }

    const Plan& plan(int n, int h, int w) const {
        std::lock_guard lock(mutex_);
        const auto key = std::make_tuple(n, h, w, num_threads());
        if (auto it = plans_.find(key); it != plans_.end()) return it->second;
        // The output type and residual add fused when a kernel supports them; otherwise a float32
        // output stored (converted, added) afterwards.
        Plan p;
        std::optional<dnnl::convolution_forward::primitive_desc> pd;
        try {
            pd = describe(n, h, w, to_dnnl(desc_.output), desc_.accumulate);
        } catch (const dnnl::error&) {
            pd = describe(n, h, w, dt::f32, false);
            p.staged_output = true;
        }
        p.primitive = dnnl::convolution_forward(*pd);
        p.scratchpad_md = pd->scratchpad_desc();
        p.weights = weights_.weights_for(pd->weights_desc());
        p.src_md = pd->src_desc();
        p.dst_md = pd->dst_desc();
        p.output_count = static_cast<int64_t>(n) * desc_.output_h(h) * desc_.output_w(w) * desc_.out_channels;
        plan_input(p, {n, kernel_desc_.in_channels, h, w}, tag::nhwc, to_dnnl(desc_.input), input_inverse_steps_);
        log_debug("oneDNN conv " + desc_.name + " " + to_string(precision_) + " " + std::to_string(desc_.in_channels) + "->" + std::to_string(desc_.out_channels) + " " +
                  std::to_string(desc_.kernel_h) + "x" + std::to_string(desc_.kernel_w) + "/" + std::to_string(desc_.stride_h) +
                  " g" + std::to_string(desc_.groups) + " on " + std::to_string(n) + "x" + std::to_string(h) + "x" +
                  std::to_string(w) + ": " + pd->impl_info_str() + (p.staged_output ? " (staged output)" : ""));
        return plans_.emplace(key, std::move(p)).first->second;
    }

    // The convolution the primitive runs: desc_ itself, or its plain depthwise form when the
    // input channels are repeated first.
    static ConvDesc expanded(ConvDesc d, int multiplier) {
        d.in_channels *= multiplier;
        d.groups *= multiplier;
        return d;
    }

    Precision precision_;
    int multiplier_;
    bool separate_gelu_;
    ConvDesc kernel_desc_;
    std::vector<float> input_inverse_steps_;  // int8: quantize_channels_s8's, one per input channel
    mutable PackedWeights weights_;
    memory bias_;
    mutable std::mutex mutex_;
    mutable std::map<std::tuple<int, int, int, int>, Plan> plans_;  // by n, h, w, thread count
};


class OnednnLinear final : public Linear {
public:
    // nn.Linear stores W [out, in]: the memory of matmul's B [in, out] read as "ba", and of a 1×1
    // convolution's weights [out, in, 1, 1] as "oihw".
    OnednnLinear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias)
        : Linear(desc), precision_(layer_precision(desc)),
          separate_gelu_(gelu_after_kernel(precision_, desc.activation, desc.accumulate)),
          input_inverse_steps_(precision_ == Precision::int8
                                     ? int8_inverse_steps(desc.input_range, desc.input_smoothing, desc.in_features)
                                     : std::vector<float>()),
          as_convolution_(!has_avx512_kernels()),
          weights_(plain_weight_md(desc, as_convolution_), layer_weights(weight, desc, precision_), bias, desc.out_features, precision_,
                   int8_step(desc.input_range)),
          bias_(as_convolution_ ? memory::desc({desc.out_features}, dt::f32, tag::x) : memory::desc({1, desc.out_features}, dt::f32, tag::ab),
                cpu_engine(), const_cast<float*>(weights_.bias())) {
        if (desc.typical_rows > 0) {
            plan(desc.typical_rows);
        } else {
            weights_.keep_private_copy();
        }
    }

protected:
    void execute(const void* x, int rows, void* y) const override {
        run_plan(plan(rows), bias_, x, y, desc_.output, desc_.accumulate);
        if (separate_gelu_) apply_gelu(y, static_cast<int64_t>(rows) * desc_.out_features, desc_.output);
    }

private:
    static memory::desc plain_weight_md(const LinearDesc& d, bool as_convolution) {
        if (as_convolution) return memory::desc({d.out_features, d.in_features, 1, 1}, dt::f32, tag::oihw);
        return memory::desc({d.in_features, d.out_features}, dt::f32, tag::ba);
    }

    // The dimensions of x as the primitive sees it.
    memory::dims input_dims(int rows) const {
        if (as_convolution_) return {1, desc_.in_features, 1, rows};
        return {rows, desc_.in_features};
    }
    tag activation_layout() const { return as_convolution_ ? tag::nhwc : tag::ab; }

    // The primitive for `rows` rows and what its plan needs from it.
    void describe(Plan& p, int rows, dt dst_type, bool fused_sum) const {
        const dt type = compute_type(precision_);
        const int in = desc_.in_features, out = desc_.out_features;
        const dnnl::primitive_attr attr = layer_attr(weights_, separate_gelu_ ? Activation::none : desc_.activation, fused_sum);
        const auto take = [&](const dnnl::primitive_desc& pd, dnnl::primitive primitive) {
            p.primitive = std::move(primitive);
            p.scratchpad_md = pd.scratchpad_desc();
            p.src_md = pd.src_desc(0);
            p.dst_md = pd.dst_desc(0);
            p.weights = weights_.weights_for(pd.weights_desc(0));
            p.kernel = pd.impl_info_str();
        };
        if (as_convolution_) {
            const memory::desc src_md(input_dims(rows), type, tag::nhwc);
            const memory::desc dst_md({1, out, 1, rows}, dst_type, tag::nhwc);
            const memory::desc weight_any({out, in, 1, 1}, type, tag::any);
            const dnnl::convolution_forward::desc op(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                                     weight_any, bias_.get_desc(), dst_md, {1, 1}, {0, 0}, {0, 0});
            const dnnl::convolution_forward::primitive_desc pd(op, attr, cpu_engine());
            take(pd, dnnl::convolution_forward(pd));
        } else {
            const memory::desc src_md(input_dims(rows), type, tag::ab);
            const memory::desc dst_md({rows, out}, dst_type, tag::ab);
            const memory::desc weight_any({in, out}, type, tag::any);
            const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, weight_any, bias_.get_desc(), dst_md), attr, cpu_engine());
            take(pd, dnnl::matmul(pd));
        }
    }

    const Plan& plan(int rows) const {
        std::lock_guard lock(mutex_);
        const auto key = std::make_pair(rows, num_threads());
        if (auto it = plans_.find(key); it != plans_.end()) return it->second;
        Plan p;
        try {
            describe(p, rows, to_dnnl(desc_.output), desc_.accumulate);
        } catch (const dnnl::error&) {
            describe(p, rows, dt::f32, false);
            p.staged_output = true;
        }
        p.output_count = static_cast<int64_t>(rows) * desc_.out_features;
        plan_input(p, input_dims(rows), activation_layout(), to_dnnl(desc_.input), input_inverse_steps_);
        log_debug(std::string("oneDNN ") + (as_convolution_ ? "linear as 1x1 conv " : "matmul ") + desc_.name + " " + to_string(precision_) +
                  " " + std::to_string(rows) + "x" + std::to_string(desc_.in_features) + "->" + std::to_string(desc_.out_features) + ": " +
                  p.kernel + (p.staged_output ? " (staged output)" : ""));
        return plans_.emplace(key, std::move(p)).first->second;
    }

    Precision precision_;
    bool separate_gelu_;
    std::vector<float> input_inverse_steps_;  // int8: quantize_channels_s8's, one per input channel
    bool as_convolution_;
    mutable PackedWeights weights_;
    memory bias_;
    mutable std::mutex mutex_;
    mutable std::map<std::pair<int, int>, Plan> plans_;  // by rows, thread count
};

// Attention as two batched matrix products over (sequence, head), reading q, k and v in place
// from the packed projections through strided memory descriptors, and writing the output
// straight into [n, length, heads·head_dim]; the softmax between them is ops.h's. The products
// are float32 in every precision: for strided operands oneDNN 2.6 has only its gemm kernels,
// which are fast in float32 and several times slower in bf16 (docs/performance.md); on AMX the
// backend runs kernels/amx/attention.h in bf16 and int8 instead. Sequences
// go in groups whose scores take at most kScoresBytes, so a batch of prompts never
// materializes all of its attention matrices at once.
class OnednnAttention final : public Attention {
public:
    using Attention::Attention;

protected:
    void execute(const void* qkv, int n, int length, void* out) const override {
        const int width = desc_.heads * desc_.head_dim;
        const int64_t qkv_count = static_cast<int64_t>(n) * length * 3 * width;
        const float* packed = static_cast<const float*>(qkv);
        if (desc_.input == DType::bf16) {
            float* widened = static_cast<float*>(thread_scratch(3, qkv_count * sizeof(float)));
            bf16_to_f32(static_cast<const uint16_t*>(qkv), widened, qkv_count);
            packed = widened;
        }
        constexpr int64_t kScoresBytes = 4 << 20;
        const int64_t per_sequence = static_cast<int64_t>(desc_.heads) * length * length * sizeof(float);
        const int group = static_cast<int>(std::clamp<int64_t>(kScoresBytes / per_sequence, 1, n));
        const size_t out_element = dtype_size(desc_.output);
        for (int start = 0; start < n; start += group) {
            const int count = std::min(group, n - start);
            run_group(packed + static_cast<int64_t>(start) * length * 3 * width, count, length,
                      static_cast<char*>(out) + static_cast<int64_t>(start) * length * width * out_element);
        }
    }

private:
    struct Plan {
        memory::desc q_md, kt_md, v_md, scores_md, out_md, scores_scratchpad_md, weighted_scratchpad_md;
        dnnl::matmul scores, weighted;
    };

    void run_group(const float* qkv, int n, int length, void* out) const {
        const Plan& p = plan(n, length);
        dnnl::stream& stream = thread_stream();
        const int width = desc_.heads * desc_.head_dim;
        float* scores = static_cast<float*>(thread_scratch(4, p.scores_md.get_size()));
        run_primitive(p.scores, p.scores_scratchpad_md,
                      {{DNNL_ARG_SRC, memory(p.q_md, cpu_engine(), const_cast<float*>(qkv))},
                       {DNNL_ARG_WEIGHTS, memory(p.kt_md, cpu_engine(), const_cast<float*>(qkv + width))},
                       {DNNL_ARG_DST, memory(p.scores_md, cpu_engine(), scores)}});
        stream.wait();
        attention_softmax(scores, static_cast<int64_t>(n) * desc_.heads, length, desc_.causal, scores, DType::f32);
        // The output is float32; a bf16 one is converted from a float32 staging copy.
        void* result = desc_.output == DType::f32 ? out : thread_scratch(5, p.out_md.get_size());
        run_primitive(p.weighted, p.weighted_scratchpad_md,
                      {{DNNL_ARG_SRC, memory(p.scores_md, cpu_engine(), scores)},
                       {DNNL_ARG_WEIGHTS, memory(p.v_md, cpu_engine(), const_cast<float*>(qkv + 2 * width))},
                       {DNNL_ARG_DST, memory(p.out_md, cpu_engine(), result)}});
        stream.wait();
        if (result != out) store_f32(static_cast<const float*>(result), static_cast<int64_t>(n) * length * width, out, desc_.output, false);
    }

    const Plan& plan(int n, int length) const {
        std::lock_guard lock(mutex_);
        const auto key = std::make_tuple(n, length, num_threads());
        if (auto it = plans_.find(key); it != plans_.end()) return it->second;
        const int64_t heads = desc_.heads, d = desc_.head_dim, l = length, c = heads * d;
        Plan p;
        // [n, L, 3C] viewed per (sequence, head): q [n, H, L, d], kᵀ [n, H, d, L], v like q.
        p.q_md = memory::desc({n, heads, l, d}, dt::f32, memory::dims{l * 3 * c, d, 3 * c, 1});
        p.kt_md = memory::desc({n, heads, d, l}, dt::f32, memory::dims{l * 3 * c, d, 1, 3 * c});
        p.v_md = p.q_md;
        p.scores_md = memory::desc({n, heads, l, l}, dt::f32, tag::abcd);
        p.out_md = memory::desc({n, heads, l, d}, dt::f32, memory::dims{l * c, d, c, 1});
        dnnl::primitive_attr scaled = with_user_scratchpad();
        scaled.set_output_scales(0, {1.0f / std::sqrt(static_cast<float>(d))});
        const dnnl::matmul::primitive_desc scores_pd(dnnl::matmul::desc(p.q_md, p.kt_md, p.scores_md), scaled, cpu_engine());
        const dnnl::matmul::primitive_desc weighted_pd(dnnl::matmul::desc(p.scores_md, p.v_md, p.out_md), with_user_scratchpad(),
                                                       cpu_engine());
        p.scores = dnnl::matmul(scores_pd);
        p.weighted = dnnl::matmul(weighted_pd);
        p.scores_scratchpad_md = scores_pd.scratchpad_desc();
        p.weighted_scratchpad_md = weighted_pd.scratchpad_desc();
        log_debug("oneDNN attention " + std::to_string(n) + "x" + std::to_string(length) + "x" + std::to_string(heads) + "x" +
                  std::to_string(d) + ": " + scores_pd.impl_info_str() + ", " + weighted_pd.impl_info_str());
        return plans_.emplace(key, std::move(p)).first->second;
    }

    mutable std::mutex mutex_;
    mutable std::map<std::tuple<int, int, int>, Plan> plans_;  // by n, length, thread count
};

class OnednnBackend final : public Backend {
public:
    std::string name() const override { return "onednn"; }
    bool native(Precision precision) const override {
        switch (precision) {
            case Precision::f32: return true;
            case Precision::bf16: return bf16_is_native();
            case Precision::int8: return int8_is_native();
        }
        return false;
    }
    Precision int8_companion() const override { return bf16_beats_f32() ? Precision::bf16 : Precision::f32; }
    bool bf16_is_faster() const override { return bf16_beats_f32(); }
    std::unique_ptr<Conv2d> make_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) override {
        check_conv(desc, weight, bias);
        if (desc.depthwise() && desc.precision == Precision::int8) {
            if (has_avx512_kernels() && avx512::handles_int8_depthwise(desc)) return avx512::make_int8_depthwise_conv2d(desc, weight, bias);
            // oneDNN's int8 depthwise kernels were slower than its float32 ones (bench_ops, Zen 5:
            // 237 against 145 µs for S0's 7×7 at 64×64), and they cannot keep the centre tap
            // unquantized (kernels.h): the layer computes in float32.
            ConvDesc f32 = desc;
            f32.precision = Precision::f32;
            f32.input_range = 0;
            f32.input_smoothing.clear();
            return make_conv2d(f32, weight, bias);
        }
        if (avx2_depthwise_is_faster(desc)) return avx2::make_depthwise_conv2d(desc, weight, bias);
        if (avx512_depthwise_is_faster(desc)) return avx512::make_depthwise_conv2d(desc, weight, bias);
        if (avx512_bf16_pointwise_is_faster(desc)) return avx512::make_bf16_pointwise_conv2d(desc, weight, bias);
        return std::make_unique<OnednnConv2d>(desc, weight, bias);
    }
    std::unique_ptr<Linear> make_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias) override {
        check_linear(desc, weight, bias);
        return std::make_unique<OnednnLinear>(desc, weight, bias);
    }
    // Where oneDNN's bf16 convolutions run on AMX tiles, the fused AMX kernel replaces them and the
    // GELU pass between them (kernels/amx/pointwise_ffn.h). In int8 models it computes in bf16
    // (int8's companion) where its work is shared by blocks of positions, which beat oneDNN's
    // int8 pair (two threads of the AMX Xeon: S0 image 8.8 → 6.7 ms); with larger weights (the
    // S0 text RepMixer's) the int8 pair is faster (2.4 against 2.7 ms for S0 text) and stays.
    // Without AMX, where oneDNN runs its AVX-512 kernels on a CPU with VNNI, a calibrated int8
    // FFN runs fused in int8 instead (kernels/avx512/int8_pointwise_ffn.h).
    std::unique_ptr<PointwiseFfn> make_pointwise_ffn(const PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                     const Tensor& b2) override {
        if (dnnl::get_effective_cpu_isa() < dnnl::cpu_isa::avx512_core_amx) {
            if (has_avx512_kernels() && avx512::handles_int8_pointwise_ffn(desc)) return avx512::make_int8_pointwise_ffn(desc, w1, b1, w2, b2);
            return nullptr;
        }
        PointwiseFfnDesc d = desc;
        if (d.precision == Precision::int8 && int8_companion() == Precision::bf16 && amx::shares_by_blocks(d)) d.precision = Precision::bf16;
        if (!amx::handles_pointwise_ffn(d)) return nullptr;
        return amx::make_pointwise_ffn(d, w1, b1, w2, b2);
    }
    // Where the int8 FFN kernel serves a block (as above) and the int8 depthwise kernel its
    // depthwise layer, the two run as one, the output handed over in int8 levels
    // (kernels/avx512/int8_depthwise_ffn.h).
    std::unique_ptr<DepthwiseFfn> make_depthwise_ffn(const ConvDesc& depthwise, const Tensor& depthwise_weight, const Tensor& depthwise_bias,
                                                     const PointwiseFfnDesc& ffn, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                     const Tensor& b2) override {
        if (dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_amx || !has_avx512_kernels() ||
            !avx512::handles_int8_depthwise_ffn(depthwise, ffn)) {
            return nullptr;
        }
        check_conv(depthwise, depthwise_weight, depthwise_bias);
        return avx512::make_int8_depthwise_ffn(depthwise, depthwise_weight, depthwise_bias, ffn, w1, b1, w2, b2);
    }
    // Where oneDNN runs its AVX-512 kernels, the MCi stem's first two layers run as one
    // (kernels/avx512/conv_pair.h; two threads of Zen 5: S0's in bench_ops 419 → 368 µs, the S0
    // image encoder in int8 8.50 → 8.27 ms, S2's 22.07 → 21.53 ms).
    std::unique_ptr<ConvPair> make_conv_pair(const ConvDesc& first, const Tensor& first_weight, const Tensor& first_bias, const ConvDesc& second,
                                             const Tensor& second_weight, const Tensor& second_bias) override {
        check_conv(first, first_weight, first_bias);
        check_conv(second, second_weight, second_bias);
        if (!has_avx512_kernels() || !avx512::cpu_supported() || !avx512::handles_conv_pair(first, second)) return nullptr;
        return avx512::make_conv_pair(first, first_weight, first_bias, second, second_weight, second_bias);
    }
    // Where oneDNN runs on AMX tiles, so does attention in bf16 and int8 (kernels/amx/attention.h):
    // two threads of the AMX Xeon, bench_ops, the text encoders' 77 × 8 × 64 108 → 28 µs, ViT-B/16's
    // 197 × 12 × 64 509 → 185 µs; S2 text int8 −20%, MobileCLIP-B image int8 −19%. Elsewhere on
    // AVX-512, every precision runs the float32 kernel (kernels/avx512/attention.h): two threads of
    // Zen 5, the text's 77 × 8 × 64 112 → 56 µs, MCi's 64 × 16 × 32 88 → 49, ViT-B/16's 482 → 411;
    // S0 text int8 −5.6%, MobileCLIP-B text bf16 −13.5%.
    std::unique_ptr<Attention> make_attention(const AttentionDesc& desc) override {
        if (dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core_amx && int8_companion() == Precision::bf16 &&
            amx::handles_attention(desc)) {
            return amx::make_attention(desc);
        }
        if (has_avx512_kernels() && avx512::handles_attention(desc)) return avx512::make_attention(desc);
        return std::make_unique<OnednnAttention>(desc);
    }
};

}  // namespace

namespace {

// The instruction sets oneDNN's kernels use on this CPU (its effective ISA and those it implies).
std::vector<std::string> onednn_instruction_sets() {
    using isa = dnnl::cpu_isa;
    const isa effective = dnnl::get_effective_cpu_isa();
    const std::vector<std::pair<isa, std::vector<std::string>>> levels = {
        {isa::sse41, {"SSE4.1"}},
        {isa::avx, {"AVX"}},
        {isa::avx2, {"AVX2"}},
        {isa::avx512_core, {"AVX512F", "AVX512BW", "AVX512VL", "AVX512DQ"}},
        {isa::avx512_core_vnni, {"AVX512-VNNI"}},
        {isa::avx512_core_bf16, {"AVX512-BF16"}},
        {isa::avx512_core_amx, {"AMX-TILE", "AMX-BF16", "AMX-INT8"}},
    };
    std::vector<std::string> sets;
    for (const auto& [level, names] : levels) {
        // The AVX2 VNNI level sits apart from the AVX-512 chain; the chain is ordered.
        if (effective == isa::avx2_vnni && level > isa::avx2) break;
        if (effective != isa::avx2_vnni && level > effective) break;
        sets.insert(sets.end(), names.begin(), names.end());
    }
    if (effective == isa::avx2_vnni) sets.push_back("AVX-VNNI");
    return sets;
}

}  // namespace

// oneDNN's f32 kernels need at least SSE4.1; below that only the reference backend runs.
BackendEntry onednn_backend_entry() {
    static OnednnBackend backend;
    BackendEntry entry;
    entry.name = "onednn";
    if (!__builtin_cpu_supports("sse4.1")) {
        entry.unavailable_reason = "this CPU lacks SSE4.1, the least oneDNN's kernels need";
        return entry;
    }
    entry.available = true;
    entry.backend = &backend;
    for (Precision p : {Precision::f32, Precision::bf16, Precision::int8}) {
        if (backend.native(p)) entry.precisions.push_back(p);
    }
    entry.native_precisions = entry.precisions;  // it emulates nothing
    entry.instruction_sets = onednn_instruction_sets();
    return entry;
}

}  // namespace mclip::kernels
