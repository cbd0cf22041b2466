// `mclip info`: what a model file holds — architecture, precision, tensors, size, metadata.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "command.h"
#include "mclip/coreml.h"
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

void print_coreml_info(const mclip::CoreMLInfo& info) {
    std::printf("file:              %s (Core ML %s)\n", info.path.c_str(), info.format.c_str());
    std::printf("quantization:      %s\n", info.quantization.c_str());
    std::printf("model type:        %s, specification version %d%s%s\n", info.model_type.c_str(), info.specification_version,
                info.opset.empty() ? "" : ", opset ", info.opset.c_str());
    std::printf("compute precision: %s\n", info.compute_precision.c_str());
    std::printf("weight storage:    %s\n", info.weight_storage.c_str());
    for (const auto* list : {&info.inputs, &info.outputs}) {
        for (const auto& feature : *list) {
            std::string shape;
            for (int64_t d : feature.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
            std::printf("%-18s %s: %s %s [%s]", list == &info.inputs ? "input:" : "output:", feature.name.c_str(), feature.kind.c_str(),
                        feature.dtype.c_str(), shape.c_str());
            if (feature.kind == "image") {
                std::printf(" %s %lldx%lld", feature.color_space.c_str(), static_cast<long long>(feature.width), static_cast<long long>(feature.height));
            }
            std::printf("\n");
        }
    }
    if (info.has_image_input) {
        std::string bias;
        for (float b : info.bias) bias += (bias.empty() ? "" : ", ") + std::to_string(b);
        std::printf("preprocessing:     pixel x %.9g + [%s]\n", info.scale, bias.c_str());
    }
    std::string ops;
    for (const auto& [type, count] : info.op_histogram) ops += (ops.empty() ? "" : ", ") + type + " " + std::to_string(count);
    std::printf("ops:               %s\n", ops.c_str());
    std::printf("user metadata:\n");
    for (const auto& [key, value] : info.user_metadata) std::printf("  %-44s %s\n", key.c_str(), value.c_str());
}

void setup(CLI::App& app, int& exit_code) {
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("info", "Show what a model file holds");
    cmd->add_option("model", *path, "Model file (GGUF) or Core ML model (.mlpackage, .mlmodelc)")->required()->check(CLI::ExistingPath);
    cmd->add_flag("--json", *json, "Print one JSON document");
    cmd->callback([path, json, &exit_code] {
        if (mclip::is_coreml_path(*path)) {
            const mclip::CoreMLInfo info = mclip::inspect_coreml(*path);
            if (*json) {
                std::printf("%s\n", info.json.c_str());
            } else {
                print_coreml_info(info);
            }
            exit_code = 0;
            return;
        }
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
