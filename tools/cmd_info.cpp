// `mclip info`: what a model file holds — architecture, precision, tensors, size, metadata.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "mclip/coreml.h"
#include "mclip/model_file.h"

namespace {

nlohmann::json info_json(const mclip::ModelFileInfo& info) {
    nlohmann::json doc;
    doc["path"] = info.path;
    doc["format"] = info.format;
    doc["gguf_version"] = info.format_version;
    doc["file_size"] = info.file_size;
    doc["architecture"] = info.architecture;
    doc["name"] = info.name;
    doc["precision"] = info.weights;
    doc["tensor_count"] = info.tensor_count;
    doc["tensor_types"] = info.tensor_types;
    doc["tensor_bytes"] = info.tensor_bytes;
    doc["parameters"] = info.parameters;
    doc["tokenizer"] = info.has_tokenizer;
    doc["int8_calibration"] = info.int8_calibrated ? nlohmann::json{{"layers", info.calibrated_layers}, {"source", info.calibration_source}}
                                                   : nlohmann::json();
    nlohmann::json metadata = nlohmann::json::object();
    for (const auto& [key, value] : info.metadata) metadata[key] = nlohmann::json::parse(value);
    doc["metadata"] = metadata;
    return doc;
}

void print_info(const mclip::ModelFileInfo& info) {
    std::printf("file:          %s (%.1f MiB, GGUF v%u)\n", info.path.c_str(), info.file_size / 1048576.0, info.format_version);
    std::printf("architecture:  %s (%s)\n", info.architecture.c_str(), info.name.c_str());
    std::printf("precision:     %s\n", info.weights.c_str());
    std::printf("parameters:    %.2f M\n", info.parameters / 1e6);
    std::string types;
    for (const auto& [type, count] : info.tensor_types) types += (types.empty() ? "" : ", ") + type + " " + std::to_string(count);
    std::printf("tensors:       %zu (%s)\n", info.tensor_count, types.c_str());
    std::printf("tokenizer:     %s\n", info.has_tokenizer ? "CLIP BPE (embedded)" : "none");
    if (info.int8_calibrated) {
        std::printf("int8:          calibrated, %zu layers (%s)\n", info.calibrated_layers, info.calibration_source.c_str());
    } else {
        std::printf("int8:          not calibrated (mclip convert --calibrate IMAGES)\n");
    }
    std::printf("metadata:\n");
    for (const auto& [key, value] : info.metadata) std::printf("  %-34s %s\n", key.c_str(), value.c_str());
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
            std::printf("%-18s %s: %s %s", list == &info.inputs ? "input:" : "output:", feature.name.c_str(), feature.kind.c_str(),
                        feature.dtype.c_str());
            if (feature.kind == "image" || feature.kind == "multiArray") std::printf(" [%s]", shape.c_str());
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
        const mclip::ModelFileInfo info = mclip::inspect_model_file(*path);
        if (*json) {
            std::printf("%s\n", info_json(info).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
            print_info(info);
        }
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("info", setup);

}  // namespace
