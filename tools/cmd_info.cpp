// `mclip info`: what a model file holds — architecture, precision, tensors, size, metadata.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "command.h"
#include "io/gguf.h"
#include "models/calibration.h"
#include "models/model_file.h"

namespace {

// Long arrays (the tokenizer's merges) are summarized rather than printed whole.
constexpr size_t kArrayPreview = 8;

nlohmann::json value_for_display(const mclip::GgufValue& v) {
    if (v.type != mclip::GgufType::array || v.value.size() <= kArrayPreview) return v.value;
    nlohmann::json preview = nlohmann::json::array();
    for (size_t i = 0; i < kArrayPreview; ++i) preview.push_back(v.value[i]);
    return {{"length", v.value.size()}, {"first", preview}};
}

std::string precision_name(const mclip::GgufFile& file) {
    if (!file.has("general.file_type")) return "unknown";
    switch (file.get_int("general.file_type")) {
        case 0: return "f32";
        case 1: return "f16";
        case 7: return "q8_0";
        case 32: return "bf16";
        default: return "file type " + std::to_string(file.get_int("general.file_type"));
    }
}

void setup(CLI::App& app, int& exit_code) {
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("info", "Show what a model file holds");
    cmd->add_option("model", *path, "Model file (GGUF)")->required()->check(CLI::ExistingFile);
    cmd->add_flag("--json", *json, "Print one JSON document");
    cmd->callback([path, json, &exit_code] {
        const auto file = mclip::GgufFile::open(*path);
        const mclip::ModelConfig& config = mclip::model_file_config(file);
        std::map<std::string, size_t> type_counts;
        uint64_t tensor_bytes = 0;
        uint64_t parameters = 0;
        for (const auto& t : file.tensors()) {
            ++type_counts[mclip::to_string(t.type)];
            tensor_bytes += t.bytes;
            parameters += static_cast<uint64_t>(mclip::shape_elements(t.shape));
        }
        const bool has_tokenizer = file.has("tokenizer.ggml.merges");
        nlohmann::json doc;
        doc["path"] = *path;
        doc["format"] = "gguf";
        doc["gguf_version"] = file.version();
        doc["file_size"] = file.file_size();
        doc["architecture"] = config.name;
        doc["name"] = config.display_name;
        doc["precision"] = precision_name(file);
        doc["tensor_count"] = file.tensors().size();
        doc["tensor_types"] = type_counts;
        doc["tensor_bytes"] = tensor_bytes;
        doc["parameters"] = parameters;
        doc["tokenizer"] = has_tokenizer;
        const std::optional<mclip::Calibration> calibration = mclip::read_calibration(file);
        doc["int8_calibration"] = calibration ? nlohmann::json{{"layers", calibration->input_ranges.size()}, {"source", calibration->source}}
                                              : nlohmann::json();
        nlohmann::json metadata = nlohmann::json::object();
        for (const auto& [key, value] : file.metadata()) metadata[key] = value_for_display(value);
        doc["metadata"] = metadata;
        if (*json) {
            std::printf("%s\n", doc.dump(2).c_str());
            exit_code = 0;
            return;
        }
        std::printf("file:          %s (%.1f MiB, GGUF v%u)\n", path->c_str(), file.file_size() / 1048576.0, file.version());
        std::printf("architecture:  %s (%s)\n", config.name.c_str(), config.display_name.c_str());
        std::printf("precision:     %s\n", doc["precision"].get<std::string>().c_str());
        std::printf("parameters:    %.2f M\n", parameters / 1e6);
        std::string types;
        for (const auto& [type, count] : type_counts) types += (types.empty() ? "" : ", ") + type + " " + std::to_string(count);
        std::printf("tensors:       %zu (%s)\n", file.tensors().size(), types.c_str());
        std::printf("tokenizer:     %s\n", has_tokenizer ? "CLIP BPE (embedded)" : "none");
        if (calibration) {
            std::printf("int8:          calibrated, %zu layers (%s)\n", calibration->input_ranges.size(), calibration->source.c_str());
        } else {
            std::printf("int8:          not calibrated (mclip convert --calibrate IMAGES)\n");
        }
        std::printf("metadata:\n");
        for (const auto& [key, value] : metadata.items()) std::printf("  %-34s %s\n", key.c_str(), value.dump().c_str());
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("info", setup);

}  // namespace
