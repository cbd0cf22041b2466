// mclip → Core ML: an encoder of a model file written as an ML Program package (.mlpackage) that
// iOS 16+ apps load: Manifest.json, Data/com.apple.CoreML/model.mlmodel and weights/weight.bin.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "models/config.h"
#include "tensor/tensor.h"

namespace mclip::coreml {

struct ExportOptions {
    std::string encoder = "image";  // "image" or "text"
    std::string compute = "f16";    // "f16" or "f32": the program's compute precision
    std::string weights = "f16";    // "f32", "f16", "int8", "lut8", "lut4"
    std::string target = "iOS16";   // "iOS16" (spec 7, opset CoreML6) or "iOS17" (spec 8, CoreML7)
    // Tensors with more elements than this are compressed (int8, lut*); the others stay float.
    int64_t compression_threshold = 2048;
    // A classifier head on the image encoder, when not empty: the class names, and the class
    // weights [classes, embed_dim] (unit text embeddings times the logit scale) applied to the
    // normalized embedding, then softmax and Core ML's classify op.
    std::vector<std::string> class_labels;
    Tensor class_weights;
};

// Writes the package atomically: it is built beside `output` and renamed into place whole.
void export_package(const ModelConfig& config, const TensorMap& tensors, const std::filesystem::path& output,
                    const ExportOptions& options);

}  // namespace mclip::coreml
