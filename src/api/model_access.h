// How the library's own API modules (live video, the C API) reach the engine model behind a
// public mclip::Model. Internal: front ends never include it.
#pragma once

#include "mclip/mclip.h"
#include "models/model.h"

namespace mclip {

struct ModelAccess {
    static const ClipModel& engine(const Model& model) { return *model.model_; }
};

}  // namespace mclip

namespace mclip {

class GgufFile;
// The weight storage a model file declares (general.file_type): "f32", "f16", "bf16", "q8".
std::string weight_storage_of(const GgufFile& file);

}  // namespace mclip
