// Tensor: a typed, shaped view of memory, with shared ownership of whatever backs it (a heap
// buffer, a memory-mapped model file, a decoded checkpoint). Shapes are in PyTorch order
// (outermost first, row-major / C order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mclip {

enum class DType : uint8_t { f32, f16, bf16, f64, i8, u8, i16, i32, i64, boolean };

const char* to_string(DType dtype);
size_t dtype_size(DType dtype);

using Shape = std::vector<int64_t>;

int64_t shape_elements(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "[64, 3, 3, 3]"

class Tensor {
public:
    Tensor() = default;
    // A view of `data` kept alive by `owner` (which may be null for memory the caller manages).
    Tensor(DType dtype, Shape shape, void* data, std::shared_ptr<const void> owner);

    // A new zero-filled heap tensor.
    static Tensor zeros(DType dtype, Shape shape);
    static Tensor zeros_f32(Shape shape) { return zeros(DType::f32, std::move(shape)); }
    // A heap copy of `values` with the given shape (sizes must agree).
    static Tensor from_f32(Shape shape, std::span<const float> values);

    DType dtype() const { return dtype_; }
    const Shape& shape() const { return shape_; }
    int64_t dim(size_t axis) const { return shape_.at(axis); }
    size_t rank() const { return shape_.size(); }
    int64_t elements() const { return shape_elements(shape_); }
    size_t bytes() const { return static_cast<size_t>(elements()) * dtype_size(dtype_); }
    bool empty() const { return data_ == nullptr; }

    void* data() { return data_; }
    const void* data() const { return data_; }
    float* f32();              // throws unless dtype is f32
    const float* f32() const;  // throws unless dtype is f32
    std::span<const float> f32_span() const { return {f32(), static_cast<size_t>(elements())}; }

    // The same memory with another shape of equal element count.
    Tensor reshaped(Shape shape) const;
    // A heap copy of this tensor converted to float32 (f16, bf16, f64 and integers widen/narrow).
    Tensor to_f32() const;
    // A deep copy in the same dtype.
    Tensor clone() const;

private:
    DType dtype_ = DType::f32;
    Shape shape_;
    void* data_ = nullptr;
    std::shared_ptr<const void> owner_;
};

// Named tensors in a stable (sorted) order: checkpoints, model files, fixture data.
using TensorMap = std::map<std::string, Tensor>;

// IEEE half and bfloat16 conversions (round to nearest even on narrowing).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);

}  // namespace mclip
