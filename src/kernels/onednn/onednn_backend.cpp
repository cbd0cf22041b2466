// The oneDNN backend: convolutions and matrix multiplies from oneDNN (Debian's libdnnl, 2.6),
// which picks AVX-512 / AMX kernels for the CPU at run time.
//
// Each layer keeps its weights reordered once into the layout oneDNN's chosen kernel wants and
// caches one primitive per input shape (batch and spatial size rarely change between calls).
// Activations stay plain NCHW / row-major so every backend shares the model graphs; bias, GELU
// and residual additions are fused into the primitive as post-ops.
//
// oneDNN 2.x API: an operation descriptor (convolution_forward::desc, matmul::desc) comes first,
// then the primitive descriptor built from it.
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <mutex>
#include <tuple>

#include "common/error.h"
#include "common/log.h"
#include "kernels/kernels.h"

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

dnnl::post_ops activation_post_ops(Activation activation) {
    dnnl::post_ops ops;
    if (activation == Activation::gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    if (activation == Activation::relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    return ops;
}

Tensor as_f32(const Tensor& t) { return t.empty() || t.dtype() == DType::f32 ? t.clone() : t.to_f32(); }

class OnednnConv2d final : public Conv2d {
public:
    OnednnConv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias)
        : Conv2d(desc), weight_(as_f32(weight)), bias_(bias.empty() ? Tensor::zeros_f32({desc.out_channels}) : as_f32(bias)) {}

    void run(const float* x, int n, int h, int w, float* y) const override {
        const Compiled& c = compiled(n, h, w);
        memory src(c.src_desc, cpu_engine(), const_cast<float*>(x));
        memory dst(c.dst_desc, cpu_engine(), y);
        c.primitive.execute(thread_stream(), {{DNNL_ARG_SRC, src},
                                              {DNNL_ARG_WEIGHTS, c.weights},
                                              {DNNL_ARG_BIAS, c.bias},
                                              {DNNL_ARG_DST, dst}});
        thread_stream().wait();
    }

private:
    struct Compiled {
        memory::desc src_desc, dst_desc;
        dnnl::convolution_forward primitive;
        memory weights, bias;
    };

    const Compiled& compiled(int n, int h, int w) const {
        std::lock_guard lock(mutex_);
        const auto key = std::make_tuple(n, h, w);
        auto it = cache_.find(key);
        if (it != cache_.end()) return it->second;
        const ConvDesc& d = desc_;
        const int oh = d.output_h(h), ow = d.output_w(w);
        const memory::dims src_dims{n, d.in_channels, h, w};
        const memory::dims dst_dims{n, d.out_channels, oh, ow};
        memory::dims weight_dims;
        memory::format_tag weight_tag;
        if (d.groups == 1) {
            weight_dims = {d.out_channels, d.in_channels, d.kernel_h, d.kernel_w};
            weight_tag = tag::oihw;
        } else {
            weight_dims = {d.groups, d.out_channels / d.groups, d.in_channels / d.groups, d.kernel_h, d.kernel_w};
            weight_tag = tag::goihw;
        }
        const memory::desc src_md(src_dims, dt::f32, tag::nchw);
        const memory::desc dst_md(dst_dims, dt::f32, tag::nchw);
        const memory::desc weight_any(weight_dims, dt::f32, tag::any);
        const memory::desc bias_md({d.out_channels}, dt::f32, tag::x);
        const dnnl::convolution_forward::desc op(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                 src_md, weight_any, bias_md, dst_md, {d.stride_h, d.stride_w},
                                                 {d.pad_h, d.pad_w}, {d.pad_h, d.pad_w});
        dnnl::primitive_attr attr;
        attr.set_post_ops(activation_post_ops(d.activation));
        const dnnl::convolution_forward::primitive_desc pd(op, attr, cpu_engine());

        // Weights move once into the kernel's preferred (blocked) layout.
        memory plain(memory::desc(weight_dims, dt::f32, weight_tag), cpu_engine(), const_cast<float*>(weight_.f32()));
        memory packed(pd.weights_desc(), cpu_engine());
        dnnl::reorder(plain, packed).execute(thread_stream(), plain, packed);
        thread_stream().wait();
        Compiled compiled{src_md, dst_md, dnnl::convolution_forward(pd), packed,
                          memory(bias_md, cpu_engine(), const_cast<float*>(bias_.f32()))};
        log_debug(std::string("oneDNN conv ") + pd.impl_info_str());
        return cache_.emplace(key, std::move(compiled)).first->second;
    }

    Tensor weight_, bias_;
    mutable std::mutex mutex_;
    mutable std::map<std::tuple<int, int, int>, Compiled> cache_;
};

class OnednnLinear final : public Linear {
public:
    OnednnLinear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias)
        : Linear(desc), weight_(as_f32(weight)), bias_(bias.empty() ? Tensor::zeros_f32({desc.out_features}) : as_f32(bias)) {}

    void run(const float* x, int rows, float* y, const float* residual) const override {
        const Compiled& c = compiled(rows, residual != nullptr);
        memory src(c.src_desc, cpu_engine(), const_cast<float*>(x));
        memory dst(c.dst_desc, cpu_engine(), y);
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, c.weights}, {DNNL_ARG_BIAS, c.bias},
                                             {DNNL_ARG_DST, dst}};
        if (residual) {
            args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(c.residual_index) | DNNL_ARG_SRC_1,
                         memory(c.dst_desc, cpu_engine(), const_cast<float*>(residual)));
        }
        c.primitive.execute(thread_stream(), args);
        thread_stream().wait();
    }

private:
    struct Compiled {
        memory::desc src_desc, dst_desc;
        dnnl::matmul primitive;
        memory weights, bias;
        int residual_index;
    };

    const Compiled& compiled(int rows, bool with_residual) const {
        std::lock_guard lock(mutex_);
        const auto key = std::make_pair(rows, with_residual);
        auto it = cache_.find(key);
        if (it != cache_.end()) return it->second;
        const int in = desc_.in_features, out = desc_.out_features;
        const memory::desc src_md({rows, in}, dt::f32, tag::ab);
        const memory::desc dst_md({rows, out}, dt::f32, tag::ab);
        // nn.Linear stores W [out, in]; matmul wants B [in, out]: the same memory read as "ba".
        const memory::desc weight_any({in, out}, dt::f32, tag::any);
        const memory::desc bias_md({1, out}, dt::f32, tag::ab);
        const dnnl::matmul::desc op(src_md, weight_any, bias_md, dst_md);
        dnnl::post_ops ops = activation_post_ops(desc_.activation);
        const int residual_index = ops.len();
        if (with_residual) ops.append_binary(dnnl::algorithm::binary_add, dst_md);
        dnnl::primitive_attr attr;
        attr.set_post_ops(ops);
        const dnnl::matmul::primitive_desc pd(op, attr, cpu_engine());
        memory plain(memory::desc({in, out}, dt::f32, tag::ba), cpu_engine(), const_cast<float*>(weight_.f32()));
        memory packed(pd.weights_desc(), cpu_engine());
        dnnl::reorder(plain, packed).execute(thread_stream(), plain, packed);
        thread_stream().wait();
        Compiled compiled{src_md, dst_md, dnnl::matmul(pd), packed, memory(bias_md, cpu_engine(), const_cast<float*>(bias_.f32())),
                          residual_index};
        log_debug(std::string("oneDNN matmul ") + pd.impl_info_str());
        return cache_.emplace(key, std::move(compiled)).first->second;
    }

    Tensor weight_, bias_;
    mutable std::mutex mutex_;
    mutable std::map<std::pair<int, bool>, Compiled> cache_;
};

class OnednnBackend final : public Backend {
public:
    std::string name() const override { return "onednn"; }
    std::unique_ptr<Conv2d> make_conv2d(const ConvDesc& desc, const Tensor& weight, const Tensor& bias) override {
        return std::make_unique<OnednnConv2d>(desc, weight, bias);
    }
    std::unique_ptr<Linear> make_linear(const LinearDesc& desc, const Tensor& weight, const Tensor& bias) override {
        return std::make_unique<OnednnLinear>(desc, weight, bias);
    }
};

}  // namespace

// oneDNN's f32 kernels need at least SSE4.1; below that the reference backend is used.
Backend* onednn_backend() {
    static OnednnBackend backend;
    static const bool usable = __builtin_cpu_supports("sse4.1");
    return usable ? &backend : nullptr;
}

}  // namespace mclip::kernels
