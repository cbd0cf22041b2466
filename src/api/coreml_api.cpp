// include/mclip/coreml.h over the mclip_coreml component (absent when MCLIP_WITH_COREML is off).
#include "mclip/coreml.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "mclip/error.h"

#ifdef MCLIP_HAVE_COREML
#include "coreml/package.h"
#endif

namespace mclip {

namespace fs = std::filesystem;

namespace {

[[maybe_unused]] void require_coreml() {
#ifndef MCLIP_HAVE_COREML
    throw Error(ErrorCode::unsupported, "this build of mclip has no Core ML support (configured with MCLIP_WITH_COREML=OFF)");
#endif
}

#ifdef MCLIP_HAVE_COREML
std::vector<CoreMLFeature> features(const nlohmann::json& list) {
    std::vector<CoreMLFeature> out;
    for (const auto& entry : list) {
        CoreMLFeature feature;
        feature.name = entry.value("name", "");
        feature.kind = entry.value("kind", entry.value("type", ""));
        if (entry.contains("shape") && entry["shape"].is_array()) feature.shape = entry["shape"].get<std::vector<int64_t>>();
        feature.dtype = entry.value("dtype", entry.value("dataType", ""));
        feature.color_space = entry.value("colorSpace", "");
        if (entry.contains("width") && entry["width"].is_number()) feature.width = entry["width"].get<int64_t>();
        if (entry.contains("height") && entry["height"].is_number()) feature.height = entry["height"].get<int64_t>();
        feature.description = entry.value("shortDescription", "");
        out.push_back(std::move(feature));
    }
    return out;
}
#endif

}  // namespace

bool is_coreml_path(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return false;
    const fs::path name = path.lexically_normal().filename().empty() ? path.lexically_normal().parent_path() : path.lexically_normal();
    const std::string extension = name.extension().string();
    return extension == ".mlpackage" || extension == ".mlmodelc" || fs::exists(path / "Manifest.json", ec) ||
           fs::exists(path / "metadata.json", ec);
}

CoreMLInfo inspect_coreml(const fs::path& path) {
    require_coreml();
    CoreMLInfo info;
#ifdef MCLIP_HAVE_COREML
    const nlohmann::json doc = coreml::inspect(path);
    info.path = path.string();
    info.format = doc.value("format", "");
    info.quantization = doc.value("quantization", "");
    info.model_type = doc.value("modelType", "");
    info.specification_version = doc.value("specificationVersion", 0);
    if (doc.contains("program")) info.opset = doc["program"].value("opset", "");
    if (doc.contains("compute_precision")) info.compute_precision = doc["compute_precision"].value("summary", "");
    if (doc.contains("computePrecision")) info.compute_precision = doc.value("computePrecision", "");
    if (doc.contains("weight_storage")) info.weight_storage = doc["weight_storage"].value("summary", "");
    if (doc.contains("storagePrecision")) info.weight_storage = doc.value("storagePrecision", "");
    info.inputs = features(doc.value("inputs", nlohmann::json::array()));
    info.outputs = features(doc.value("outputs", nlohmann::json::array()));
    if (doc.contains("preprocessing") && !doc["preprocessing"].empty()) {
        const auto& first = doc["preprocessing"][0];
        info.has_image_input = true;
        info.scale = first.value("scale", 1.0f);
        info.bias = first.value("bias", std::vector<float>{});
    }
    const nlohmann::json ops = doc.value("ops", nlohmann::json::object());
    for (const auto& [type, count] : ops.items()) {
        if (count.is_number()) info.op_histogram.emplace_back(type, count.get<int64_t>());
    }
    std::stable_sort(info.op_histogram.begin(), info.op_histogram.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    if (doc.contains("metadata")) {
        const nlohmann::json user = doc["metadata"].value("userDefined", nlohmann::json::object());
        for (const auto& [key, value] : user.items()) {
            info.user_metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();
        }
    }
    info.json = doc.dump(1);
#endif
    return info;
}

}  // namespace mclip
