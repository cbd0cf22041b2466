// Conversion: a training-form checkpoint in, one inference-form model file out.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mclip/model_file.h"
#include "models/model_file.h"

namespace mclip {

// Reads, folds, checks and writes; the output appears only when everything succeeded.
// The public declaration (mclip/model_file.h) has the options.
ConvertSummary convert_checkpoint(const std::filesystem::path& input, const std::filesystem::path& output,
                                  const ConvertOptions& options);

}  // namespace mclip
