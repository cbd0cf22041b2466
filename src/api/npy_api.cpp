// The public .npy API (include/mclip/npy.h) over the engine's reader and writer.
#include "mclip/npy.h"

#include <string>

#include "common/error.h"
#include "io/npy.h"

namespace mclip {

Array<float> read_npy_f32(const std::filesystem::path& path) {
    const Tensor t = read_npy(path);
    if (t.dtype() != DType::f32) {
        throw Error(ErrorCode::invalid_input, path.string() + ": expected float32 values, got " + std::string(to_string(t.dtype())));
    }
    return {t.shape(), std::vector<float>(t.f32(), t.f32() + t.elements())};
}

Array<int64_t> read_npy_integers(const std::filesystem::path& path) {
    const Tensor t = read_npy(path);
    Array<int64_t> array{t.shape(), std::vector<int64_t>(static_cast<size_t>(t.elements()))};
    if (t.dtype() == DType::i64) {
        const auto* v = static_cast<const int64_t*>(t.data());
        array.values.assign(v, v + t.elements());
    } else if (t.dtype() == DType::i32) {
        const auto* v = static_cast<const int32_t*>(t.data());
        array.values.assign(v, v + t.elements());
    } else {
        throw Error(ErrorCode::invalid_input, path.string() + ": expected int32 or int64 values, got " + std::string(to_string(t.dtype())));
    }
    return array;
}

void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* values) {
    const int64_t count = shape_elements(shape);
    if (count > 0 && !values) throw Error(ErrorCode::invalid_argument, "write_npy_f32: no values");
    write_npy(path, Tensor::from_f32(shape, {values, static_cast<size_t>(count)}));
}

}  // namespace mclip
