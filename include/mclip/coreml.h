// Core ML: reading what iOS developers have (.mlpackage packages and compiled .mlmodelc folders)
// and writing what their apps load, without Python or a Mac (docs/coreml.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mclip/export.h"

namespace mclip {

struct CoreMLFeature {
    std::string name;
    std::string kind;               // "image", "multiArray", ...
    std::vector<int64_t> shape;     // as the program sees it (an image is [1, 3, H, W])
    std::string dtype;              // "fp32", "fp16", "int32"
    std::string color_space;        // images: "RGB", "BGR", "GRAYSCALE"
    int64_t width = 0, height = 0;  // images
    std::string description;
};

struct CoreMLInfo {
    std::string path;
    std::string format;             // "mlpackage" or "mlmodelc"
    std::string quantization;       // "fp32", "fp16", "int8", "lut8", "lut4", ...
    std::string model_type;         // "mlProgram" or "neuralNetwork"
    int specification_version = 0;  // 7 = iOS16, 8 = iOS17
    std::string opset;              // "CoreML6"
    std::string compute_precision;  // "fp32", "fp16", "mixed"
    std::string weight_storage;     // "palettized 4-bit (fp16 lut) + fp16", ...
    std::vector<CoreMLFeature> inputs, outputs;
    // The ImageType preprocessing of the first image input: pixel × scale + bias[channel].
    bool has_image_input = false;
    float scale = 1.0f;
    std::vector<float> bias;
    std::vector<std::pair<std::string, int64_t>> op_histogram;  // most frequent first
    std::map<std::string, std::string> user_metadata;
    std::string json;  // the full report (docs/coreml.md lists its fields)
};

// True when `path` is a directory that holds a Core ML model (Manifest.json or metadata.json) or
// is named *.mlpackage / *.mlmodelc.
MCLIP_API bool is_coreml_path(const std::filesystem::path& path);

// Reads and validates a package (manifest, specification, weight file) or a compiled model's
// metadata.json. Throws Error(invalid_input) naming what is wrong; Error(unsupported) when this
// build has no Core ML support.
MCLIP_API CoreMLInfo inspect_coreml(const std::filesystem::path& path);

struct CoreMLImportOptions {
    std::string weights = "f32";        // storage in the model file: one of weight_storage_names()
    std::filesystem::path vocabulary;   // BPE vocabulary to embed; empty: none
};

struct CoreMLImportSummary {
    std::string architecture;  // the architecture the programs matched ("mobileclip_s0")
    bool image = false;        // the file holds the image encoder
    bool text = false;         // ... and the text encoder
    size_t tensors = 0;
    uint64_t output_bytes = 0;
};

// MobileCLIP Core ML packages (an image encoder and/or a text encoder, ML Programs) → one mclip
// model file; from one package the file holds that encoder only. Each program is mapped onto mclip's graph by its structure (docs/coreml.md); the image
// package's scale and bias become the file's preprocessing. Core ML packages carry no logit
// scale: the file gets MobileCLIP's trained value, 100. Throws Error(invalid_input) saying what
// did not match; the output appears only when everything succeeded.
MCLIP_API CoreMLImportSummary import_coreml(const std::vector<std::filesystem::path>& packages, const std::filesystem::path& output,
                                            const CoreMLImportOptions& options = {});

struct CoreMLExportOptions {
    std::string encoder = "image";  // "image" or "text" (not the causal text encoder of MobileCLIP-B yet)
    std::string compute = "f16";    // "f16" or "f32": the program's compute precision
    std::string weights = "f16";    // "f32" (needs compute f32), "f16", "int8", "lut8", "lut4"
    std::string target = "iOS16";   // "iOS16" or "iOS17"
    // With labels, the image package is a classifier: the labels' text embeddings (the template
    // ensemble, unit length, times the logit scale) become a final linear layer and softmax over
    // the normalized embedding, and the package declares Core ML's classifier outputs
    // ("classLabel", "classLabel_probs"; "embedding" stays). Templates empty: default_templates().
    std::vector<std::string> labels;
    std::vector<std::string> templates;
};

// Writes one encoder of a model file as an ML Program package (.mlpackage) for iOS apps; the
// package appears whole or not at all. Large weights are compressed as coremltools does it
// (fp16; int8 linear per output channel; uniform 8- or 4-bit palettization).
MCLIP_API void export_coreml(const std::filesystem::path& model_file, const std::filesystem::path& output,
                             const CoreMLExportOptions& options = {});

}  // namespace mclip
