// Backend selection (the fastest available by default, any one by name) and what every backend
// shares: layer checks and the profiling wrapper around each layer's run.
#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/profile.h"

namespace mclip::kernels {

#ifdef MCLIP_HAVE_ONEDNN_BACKEND
BackendEntry onednn_backend_entry();  // onednn/onednn_backend.cpp
#else
static BackendEntry onednn_backend_entry() {
    BackendEntry entry;
    entry.name = "onednn";
    entry.unavailable_reason = "not in this build (configured with MCLIP_USE_ONEDNN=OFF or without oneDNN)";
    return entry;
}
#endif

const char* to_string(Precision precision) {
    switch (precision) {
        case Precision::f32: return "f32";
        case Precision::bf16: return "bf16";
        case Precision::int8: return "int8";
    }
    return "?";
}

const std::vector<std::string>& precision_names() {
    static const std::vector<std::string> names = {to_string(Precision::f32), to_string(Precision::bf16), to_string(Precision::int8)};
    return names;
}

Precision parse_precision(const std::string& name) {
    const auto& names = precision_names();
    std::string known;
    for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == name) return static_cast<Precision>(i);
        known += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    }
    throw Error(ErrorCode::invalid_argument, "unknown precision '" + name + "' (expected " + known + ")");
}

bool int8_capable(const ConvDesc& d) {
    if (d.precision != Precision::int8) return false;
    if (d.depthwise()) {
        return d.out_channels == d.in_channels && d.stride_h == 1 && d.stride_w == 1 && d.kernel_h >= kMinInt8DepthwiseKernel &&
               d.kernel_w >= kMinInt8DepthwiseKernel;
    }
    return d.groups == 1 && d.in_channels >= kMinInt8Channels;
}
bool int8_capable(const LinearDesc& d) { return d.precision == Precision::int8; }

Precision compute_precision(const ConvDesc& d) {
    if (d.precision != Precision::int8) return d.precision;
    if (int8_capable(d) && d.input_range > 0) return Precision::int8;
    return d.depthwise() ? Precision::f32 : Precision::bf16;
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

void ConvPair::run(const void* x, int n, int h, int w, void* y) const {
    ProfileScope scope("conv pair");
    execute(x, n, h, w, y);
}

void PointwiseFfn::run(const void* x, int64_t positions, float* y) const {
    ProfileScope scope("pointwise ffn");
    execute(x, positions, y);
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

namespace {

// The reference kernels' inner loops are compiled for these (ops.cpp, reference/gemm.cpp) and
// picked at run time.
std::vector<std::string> reference_instruction_sets() {
    if (__builtin_cpu_supports("avx512f")) return {"AVX512F"};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"AVX2", "FMA"};
    return {"SSE2"};
}

std::vector<BackendEntry> make_registry() {
    std::vector<BackendEntry> entries;
    entries.push_back(onednn_backend_entry());
    BackendEntry reference;
    reference.name = "reference";
    reference.available = true;
    // It emulates bf16 and int8 arithmetic exactly, in float32 (reference_backend.cpp).
    reference.precisions = {Precision::f32, Precision::bf16, Precision::int8};
    reference.native_precisions = {Precision::f32};
    reference.instruction_sets = reference_instruction_sets();
    reference.backend = &reference_backend();
    entries.push_back(reference);
    return entries;
}

}  // namespace

bool BackendEntry::runs(Precision precision) const {
    return available && std::find(precisions.begin(), precisions.end(), precision) != precisions.end();
}

const std::vector<BackendEntry>& registered_backends() {
    static const std::vector<BackendEntry> entries = make_registry();
    return entries;
}

Backend& default_backend() {
    for (const BackendEntry& entry : registered_backends()) {
        if (entry.available) return *entry.backend;
    }
    return reference_backend();
}

Backend& backend_by_name(const std::string& name) {
    if (name == "auto" || name.empty()) return default_backend();
    std::string known = "auto";
    for (const BackendEntry& entry : registered_backends()) {
        if (entry.name == name) {
            if (!entry.available) throw Error(ErrorCode::unsupported, "the " + name + " backend cannot run: " + entry.unavailable_reason);
            return *entry.backend;
        }
        known += ", " + entry.name;
    }
    throw Error(ErrorCode::invalid_argument, "unknown backend '" + name + "' (expected " + known + ")");
}

Precision fastest_precision(const Backend& backend) {
    return backend.bf16_is_faster() ? Precision::bf16 : Precision::f32;
}

int resolve_thread_count(int requested) {
    if (requested < 0) throw Error(ErrorCode::invalid_argument, "thread count must be 0 (one per core) or more, not " + std::to_string(requested));
    if (requested > 0) return requested;
    // OMP_NUM_THREADS, when set, is the default, as in PyTorch and ONNX Runtime (its first value:
    // the variable may list one count per nesting level).
    if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) {
        char* end = nullptr;
        const long count = std::strtol(env, &end, 10);
        if (end != env && count >= 1 && count <= 4096 && (*end == '\0' || *end == ',')) return static_cast<int>(count);
    }
    return omp_get_num_procs();
}

int num_threads() { return omp_get_max_threads(); }

ThreadCountScope::ThreadCountScope(int threads) : previous_(omp_get_max_threads()) {
    if (threads != previous_) omp_set_num_threads(threads);
}

ThreadCountScope::~ThreadCountScope() {
    if (omp_get_max_threads() != previous_) omp_set_num_threads(previous_);
}

}  // namespace mclip::kernels
