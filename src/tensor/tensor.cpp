#include "tensor/tensor.h"

#include <cstring>

#include "common/aligned_memory.h"
#include "common/error.h"

namespace mclip {

const char* to_string(DType dtype) {
    switch (dtype) {
        case DType::f32: return "f32";
        case DType::f16: return "f16";
        case DType::bf16: return "bf16";
        case DType::f64: return "f64";
        case DType::i8: return "i8";
        case DType::u8: return "u8";
        case DType::i16: return "i16";
        case DType::i32: return "i32";
        case DType::i64: return "i64";
        case DType::boolean: return "bool";
    }
    return "?";
}

size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::f32: case DType::i32: return 4;
        case DType::f16: case DType::bf16: case DType::i16: return 2;
        case DType::f64: case DType::i64: return 8;
        case DType::i8: case DType::u8: case DType::boolean: return 1;
    }
    return 0;
}

int64_t shape_elements(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string shape_to_string(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

Tensor::Tensor(DType dtype, Shape shape, void* data, std::shared_ptr<const void> owner)
    : dtype_(dtype), shape_(std::move(shape)), data_(data), owner_(std::move(owner)) {}

Tensor Tensor::zeros(DType dtype, Shape shape) {
    for (int64_t d : shape) {
        if (d < 0) throw Error(ErrorCode::internal, "negative tensor dimension in " + shape_to_string(shape));
    }
    const size_t bytes = static_cast<size_t>(shape_elements(shape)) * dtype_size(dtype);
    // Allocate at least one byte so data() is never null.
    const size_t rounded = (bytes + 63) / 64 * 64 + 64;
    std::byte* raw = nullptr;
    try {
        raw = static_cast<std::byte*>(allocate_aligned(rounded));
    } catch (const std::bad_alloc&) {
        throw Error(ErrorCode::io, "out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    std::memset(raw, 0, rounded);
    std::shared_ptr<const void> owner(raw, [](const void* p) { std::free(const_cast<void*>(p)); });
    return Tensor(dtype, std::move(shape), raw, std::move(owner));
}

Tensor Tensor::from_f32(Shape shape, std::span<const float> values) {
    if (shape_elements(shape) != static_cast<int64_t>(values.size())) {
        throw Error(ErrorCode::internal, "from_f32: " + std::to_string(values.size()) +
                                             " values do not fill shape " + shape_to_string(shape));
    }
    Tensor t = zeros(DType::f32, std::move(shape));
    std::memcpy(t.data(), values.data(), values.size_bytes());
    return t;
}

float* Tensor::f32() {
    if (dtype_ != DType::f32) throw Error(ErrorCode::internal, std::string("tensor is ") + to_string(dtype_) + ", not f32");
    return static_cast<float*>(data_);
}

const float* Tensor::f32() const {
    if (dtype_ != DType::f32) throw Error(ErrorCode::internal, std::string("tensor is ") + to_string(dtype_) + ", not f32");
    return static_cast<const float*>(data_);
}

Tensor Tensor::reshaped(Shape shape) const {
    if (shape_elements(shape) != elements()) {
        throw Error(ErrorCode::internal, "cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape));
    }
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
}

Tensor Tensor::clone() const {
    Tensor t = zeros(dtype_, shape_);
    if (bytes()) std::memcpy(t.data(), data_, bytes());
    return t;
}

Tensor Tensor::to_f32() const {
    Tensor out = zeros(DType::f32, shape_);
    float* dst = out.f32();
    const int64_t n = elements();
    const auto* bytes = static_cast<const std::byte*>(data_);
    for (int64_t i = 0; i < n; ++i) {
        const std::byte* p = bytes + i * dtype_size(dtype_);
        float v = 0;
        switch (dtype_) {
            case DType::f32: std::memcpy(&v, p, 4); break;
            case DType::f64: { double d; std::memcpy(&d, p, 8); v = static_cast<float>(d); break; }
            case DType::f16: { uint16_t h; std::memcpy(&h, p, 2); v = f16_to_f32(h); break; }
            case DType::bf16: { uint16_t h; std::memcpy(&h, p, 2); v = bf16_to_f32(h); break; }
            case DType::i8: v = static_cast<float>(static_cast<int8_t>(*p)); break;
            case DType::u8: case DType::boolean: v = static_cast<float>(static_cast<uint8_t>(*p)); break;
            case DType::i16: { int16_t x; std::memcpy(&x, p, 2); v = x; break; }
            case DType::i32: { int32_t x; std::memcpy(&x, p, 4); v = static_cast<float>(x); break; }
            case DType::i64: { int64_t x; std::memcpy(&x, p, 8); v = static_cast<float>(x); break; }
        }
        dst[i] = v;
    }
    return out;
}

float f16_to_f32(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: renormalize
            int e = -1;
            do { ++e; mantissa <<= 1; } while ((mantissa & 0x400u) == 0);
            bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mantissa & 0x3ffu) << 13;
        }
    } else {
        bits = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to infinity
    if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
        if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // under half the smallest subnormal
        const uint32_t exponent = abs >> 23;
        const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
        // In units of the smallest half subnormal (2^-24) the value is mantissa * 2^(exponent - 126).
        const uint32_t shift = 126 - exponent;
        uint32_t result = mantissa >> shift;
        const uint32_t remainder = mantissa & ((1u << shift) - 1);
        const uint32_t halfway = 1u << (shift - 1);
        if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
        return static_cast<uint16_t>(sign | result);
    }
    uint32_t result = ((abs - 0x38000000u) >> 13);
    const uint32_t remainder = abs & 0x1fffu;
    if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) ++result;
    return static_cast<uint16_t>(sign | result);
}

float bf16_to_f32(uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
    const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>((x + rounding) >> 16);
}

}  // namespace mclip
