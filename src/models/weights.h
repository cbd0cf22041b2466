// Where a model's tensors come from, with the checks that turn a wrong file into a clear message.
//
// Two sources exist: a training-form checkpoint (reference key names, folded at conversion) and
// a model file (mclip's inference-form names). Both hand out float32 tensors by name and check
// each one's shape against what the architecture's config says it must be.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mclip {

class GgufFile;

class WeightSource {
public:
    // `description` names the source in messages ("model.gguf", "checkpoint.pt (mobileclip_s0)").
    static WeightSource from_map(const TensorMap& tensors, std::string description);
    static WeightSource from_gguf(const GgufFile& file);
    // A model file's tensor names and shapes without their values: get() checks a tensor as
    // usual and returns an empty tensor. Graphs built from it check the file against its config
    // without reading (or converting) a weight; they cannot run.
    static WeightSource shapes_of_gguf(const GgufFile& file);

    bool has(const std::string& name) const;
    // The tensor as float32 (empty from shapes_of_gguf); throws Error(invalid_input) naming the
    // tensor when it is missing or its shape differs from `expected`.
    Tensor get(const std::string& name, const Shape& expected) const;
    // The tensor as float32 with whatever shape it has.
    Tensor get_any_shape(const std::string& name) const;

    // Names that were never read through get(), other than those `ignored` accepts; used by
    // conversion to refuse checkpoints with tensors the architecture does not have.
    std::vector<std::string> unused(const std::function<bool(const std::string&)>& ignored) const;
    // Every tensor name of the source.
    std::vector<std::string> names() const { return names_(); }
    const std::string& description() const { return description_; }

private:
    std::function<bool(const std::string&)> has_;
    std::function<Shape(const std::string&)> shape_;
    std::function<Tensor(const std::string&)> load_;  // null for shapes only
    std::function<std::vector<std::string>()> names_;
    std::string description_;
    mutable std::set<std::string> used_;
};

}  // namespace mclip
