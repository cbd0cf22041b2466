// Backend selection (the fastest available by default, any one by name) and what every backend
// shares: layer checks and the profiling wrapper around each layer's run.
#include <omp.h>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/profile.h"

namespace mclip::kernels {

#ifdef MCLIP_HAVE_ONEDNN_BACKEND
Backend* onednn_backend();  // onednn/onednn_backend.cpp; null when this CPU lacks what it needs
#else
static Backend* onednn_backend() { return nullptr; }
#endif

const char* to_string(Precision precision) {
    switch (precision) {
        case Precision::f32: return "f32";
        case Precision::bf16: return "bf16";
        case Precision::int8: return "int8";
    }
    return "?";
}

Precision parse_precision(const std::string& name) {
    if (name == "f32") return Precision::f32;
    if (name == "bf16") return Precision::bf16;
    if (name == "int8") return Precision::int8;
    throw Error(ErrorCode::invalid_argument, "unknown precision '" + name + "' (expected f32, bf16 or int8)");
}

bool int8_capable(const ConvDesc& d) {
    return d.precision == Precision::int8 && d.groups == 1 && d.in_channels >= kMinInt8Channels;
}
bool int8_capable(const LinearDesc& d) { return d.precision == Precision::int8; }

Precision compute_precision(const ConvDesc& d) {
    if (d.precision != Precision::int8) return d.precision;
    return int8_capable(d) && d.input_range > 0 ? Precision::int8 : Precision::bf16;
}

Precision compute_precision(const LinearDesc& d) {
    if (d.precision != Precision::int8) return d.precision;
    return d.input_range > 0 ? Precision::int8 : Precision::bf16;
}

namespace {

const char* conv_label(const ConvDesc& d) {
    if (d.pointwise()) return "conv 1x1";
    if (d.depthwise()) return "conv depthwise";
    return "conv dense";
}

}  // namespace

Conv2d::Conv2d(const ConvDesc& desc) : desc_(desc), profile_label_(conv_label(desc)) {}

void Conv2d::run(const void* x, int n, int h, int w, void* y) const {
    ProfileScope scope(profile_label_);
    execute(x, n, h, w, y);
}

void Linear::run(const void* x, int rows, void* y) const {
    ProfileScope scope("linear");
    execute(x, rows, y);
}

void Attention::run(const void* qkv, int n, int length, void* out) const {
    ProfileScope scope("attention");
    execute(qkv, n, length, out);
}

void check_conv(const ConvDesc& d, const Tensor& weight, const Tensor& bias) {
    if (d.groups <= 0 || d.in_channels % d.groups || d.out_channels % d.groups) {
        throw Error(ErrorCode::internal, "convolution channels are not divisible by groups");
    }
    const Shape expected{d.out_channels, d.in_channels / d.groups, d.kernel_h, d.kernel_w};
    if (weight.shape() != expected) {
        throw Error(ErrorCode::internal, "convolution weight " + shape_to_string(weight.shape()) + " != " + shape_to_string(expected));
    }
    if (!bias.empty() && bias.elements() != d.out_channels) throw Error(ErrorCode::internal, "convolution bias size mismatch");
    for (DType t : {d.input, d.output}) {
        if (t != DType::f32 && t != DType::bf16) throw Error(ErrorCode::internal, "convolution buffers must be f32 or bf16");
    }
}

void check_linear(const LinearDesc& d, const Tensor& weight, const Tensor& bias) {
    if (weight.shape() != Shape{d.out_features, d.in_features}) {
        throw Error(ErrorCode::internal, "linear weight " + shape_to_string(weight.shape()) + " does not match its description");
    }
    if (!bias.empty() && bias.elements() != d.out_features) throw Error(ErrorCode::internal, "linear bias size mismatch");
    for (DType t : {d.input, d.output}) {
        if (t != DType::f32 && t != DType::bf16) throw Error(ErrorCode::internal, "linear buffers must be f32 or bf16");
    }
}

Backend& default_backend() {
    if (Backend* fast = onednn_backend()) return *fast;
    return reference_backend();
}

Backend& backend_by_name(const std::string& name) {
    if (name == "reference") return reference_backend();
    if (name == "onednn") {
        if (Backend* fast = onednn_backend()) return *fast;
        throw Error(ErrorCode::unsupported, "the oneDNN backend is not available in this build or on this CPU");
    }
    if (name == "auto" || name.empty()) return default_backend();
    throw Error(ErrorCode::invalid_argument, "unknown backend '" + name + "' (expected auto, reference or onednn)");
}

Precision fastest_precision(const Backend& backend) {
    return backend.native(Precision::bf16) ? Precision::bf16 : Precision::f32;
}

void set_num_threads(int threads) { omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs()); }
int num_threads() { return omp_get_max_threads(); }

}  // namespace mclip::kernels
