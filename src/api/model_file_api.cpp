// The public model-file API (include/mclip/model_file.h): inspecting and converting model files.
#include "mclip/model_file.h"

#include <nlohmann/json.hpp>

#include "api/model_access.h"
#include "common/error.h"
#include "io/gguf.h"
#include "models/calibration.h"
#include "models/config.h"
#include "models/model_file.h"

namespace mclip {
namespace {

// Long arrays (the tokenizer's merges) are summarized rather than reported whole.
constexpr size_t kArrayPreview = 8;

nlohmann::json value_for_display(const GgufValue& v) {
    if (v.type != GgufType::array || v.value.size() <= kArrayPreview) return v.value;
    nlohmann::json preview = nlohmann::json::array();
    for (size_t i = 0; i < kArrayPreview; ++i) preview.push_back(v.value[i]);
    return {{"length", v.value.size()}, {"first", preview}};
}

}  // namespace

std::string weight_storage_of(const GgufFile& file) {
    if (!file.has("general.file_type")) return "f32";
    return to_string(storage_type_from_file_type(static_cast<uint32_t>(file.get_int("general.file_type"))));
}

ModelFileInfo inspect_model_file(const std::filesystem::path& path) {
    const GgufFile file = GgufFile::open(path);
    const auto config = model_file_config(file);
    ModelFileInfo info;
    info.path = path.string();
    info.format = "gguf";
    info.format_version = file.version();
    info.file_size = file.file_size();
    info.architecture = config.name;
    info.name = config.display_name;
    info.weights = weight_storage_of(file);
    for (const GgufTensorInfo& t : file.tensors()) {
        ++info.tensor_types[to_string(t.type)];
        info.tensor_bytes += t.bytes;
        info.parameters += static_cast<uint64_t>(shape_elements(t.shape));
    }
    info.tensor_count = file.tensors().size();
    info.has_tokenizer = file.has("tokenizer.ggml.merges");
    if (const std::optional<Calibration> calibration = read_calibration(file)) {
        info.int8_calibrated = true;
        info.calibrated_layers = calibration->input_ranges.size();
        info.calibration_source = calibration->source;
    }
    // A file's strings need not be UTF-8: invalid bytes are shown as U+FFFD rather than refused.
    for (const auto& [key, value] : file.metadata()) {
        info.metadata.emplace_back(key, value_for_display(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    return info;
}

Tokenizer Tokenizer::from_model_file(const std::filesystem::path& path) {
    std::optional<Tokenizer> tokenizer = load_tokenizer(GgufFile::open(path));
    if (!tokenizer) {
        throw Error(ErrorCode::invalid_input, path.string() + ": the file has no tokenizer; convert the model again with --vocab");
    }
    return std::move(*tokenizer);
}

std::vector<std::string> architecture_names() {
    std::vector<std::string> names;
    for (const ModelConfig& config : model_configs()) names.push_back(config.name);
    return names;
}

std::vector<std::string> weight_storage_names() {
    std::vector<std::string> names;
    for (StorageType type : kStorageTypes) names.push_back(to_string(type));
    return names;
}

}  // namespace mclip
