// Conversion: a training-form checkpoint in, one inference-form model file out.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "models/model_file.h"

namespace mclip {

struct ConvertOptions {
    std::string arch;                    // config table name, e.g. "mobileclip_s0"
    StorageType storage = StorageType::f32;
    std::string checkpoint_key;          // state dict nested under this key (PyTorch files); empty: detect
    std::filesystem::path vocabulary;    // BPE vocabulary to embed; empty: none
    // int8 calibration (calibration.h), measured on these images and prompts (the prompts need
    // the vocabulary); no images: the file gets no calibration.
    std::vector<std::filesystem::path> calibration_images;
    std::vector<std::string> calibration_prompts;
};

struct ConvertSummary {
    size_t input_tensors = 0;
    size_t output_tensors = 0;
    uint64_t output_bytes = 0;
    std::string source_sha256;
};

// Reads, folds, checks and writes; the output appears only when everything succeeded.
ConvertSummary convert_checkpoint(const std::filesystem::path& input, const std::filesystem::path& output,
                                  const ConvertOptions& options);

}  // namespace mclip
