#include "models/weights.h"

#include <algorithm>

#include "common/error.h"
#include "io/gguf.h"

namespace mclip {

WeightSource WeightSource::from_map(const TensorMap& tensors, std::string description) {
    WeightSource s;
    s.description_ = std::move(description);
    s.has_ = [&tensors](const std::string& name) { return tensors.count(name) != 0; };
    s.shape_ = [&tensors](const std::string& name) { return tensors.at(name).shape(); };
    s.load_ = [&tensors](const std::string& name) {
        const Tensor& t = tensors.at(name);
        return t.dtype() == DType::f32 ? t : t.to_f32();
    };
    s.names_ = [&tensors] {
        std::vector<std::string> names;
        for (const auto& [name, t] : tensors) names.push_back(name);
        return names;
    };
    return s;
}

WeightSource WeightSource::from_gguf(const GgufFile& file) {
    WeightSource s;
    s.description_ = file.path();
    s.has_ = [&file](const std::string& name) { return file.find_tensor(name) != nullptr; };
    s.shape_ = [&file](const std::string& name) { return file.find_tensor(name)->shape; };
    s.load_ = [&file](const std::string& name) { return file.tensor_f32(name); };
    s.names_ = [&file] {
        std::vector<std::string> names;
        for (const auto& t : file.tensors()) names.push_back(t.name);
        return names;
    };
    return s;
}

WeightSource WeightSource::shapes_of_gguf(const GgufFile& file) {
    WeightSource s = from_gguf(file);
    s.load_ = nullptr;
    return s;
}

bool WeightSource::has(const std::string& name) const { return has_(name); }

Tensor WeightSource::get_any_shape(const std::string& name) const {
    if (!has_(name)) throw Error(ErrorCode::invalid_input, description_ + ": missing tensor '" + name + "'");
    used_.insert(name);
    return load_ ? load_(name) : Tensor();
}

Tensor WeightSource::get(const std::string& name, const Shape& expected) const {
    Tensor t = get_any_shape(name);
    const Shape stored = shape_(name);
    if (stored == expected) return t;
    const bool same_values =
        // Scalars are sometimes saved as [1] rather than []; both hold one value.
        (shape_elements(stored) == 1 && shape_elements(expected) == 1) ||
        // Model files store quantized conv kernels as [out, in·kh·kw] (model_file.h).
        (expected.size() == 4 && stored == Shape{expected[0], shape_elements(expected) / std::max<int64_t>(expected[0], 1)});
    if (!same_values) {
        throw Error(ErrorCode::invalid_input, description_ + ": tensor '" + name + "' has shape " + shape_to_string(stored) + " but " +
                                                  shape_to_string(expected) + " was expected (is the architecture right?)");
    }
    return load_ ? t.reshaped(expected) : t;
}

std::vector<std::string> WeightSource::unused(const std::function<bool(const std::string&)>& ignored) const {
    std::vector<std::string> result;
    for (const auto& name : names_()) {
        if (!used_.count(name) && !ignored(name)) result.push_back(name);
    }
    return result;
}

}  // namespace mclip
