// include/mclip/coreml.h over the mclip_coreml component (absent when MCLIP_WITH_COREML is off).
#include "mclip/coreml.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "mclip/error.h"

#ifdef MCLIP_HAVE_COREML
#include <cmath>
#include <optional>

#include "coreml/export.h"
#include "coreml/import.h"
#include "io/gguf.h"
#include "models/weights.h"
#include "coreml/package.h"
#include "models/model_file.h"
#include "mclip/labels.h"
#include "mclip/mclip.h"
#include "mclip/tokenizer.h"
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
    info.opset = doc.contains("program") ? doc["program"].value("opset", "") : doc.value("opset", "");  // package / compiled
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
            info.user_metadata[key] = value.is_string() ? value.get<std::string>() : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
    }
    info.json = doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
#endif
    return info;
}

CoreMLImportSummary import_coreml(const std::vector<fs::path>& packages, const fs::path& output, const CoreMLImportOptions& options) {
    require_coreml();
    CoreMLImportSummary summary;
#ifdef MCLIP_HAVE_COREML
    if (packages.empty() || packages.size() > 2) {
        throw Error(ErrorCode::invalid_argument, "Core ML import takes one image encoder package and one text encoder package");
    }
    std::optional<coreml::ImportedEncoder> image, text;
    for (const fs::path& path : packages) {
        const coreml::Package package = coreml::read_package(path);
        const auto& inputs = package.model.description().input();
        const bool is_image = inputs.size() == 1 && inputs[0].type().has_imagetype();
        std::optional<coreml::ImportedEncoder>& slot = is_image ? image : text;
        if (slot) throw Error(ErrorCode::invalid_argument, path.string() + ": a second " + (is_image ? "image" : "text") + " encoder package");
        slot = is_image ? coreml::import_image_encoder(package) : coreml::import_text_encoder(package);
    }
    if (image && text && image->config.name != text->config.name) {
        throw Error(ErrorCode::invalid_input, "the image package is " + image->config.display_name + " but the text package " + text->config.display_name);
    }
    // One package alone gives a file with that encoder only (embed works for it; classify needs both).
    ModelConfig config = image ? image->config : text->config;
    if (image && text) config.text = text->config.text;
    ModelFileContents contents;
    contents.config = &config;
    if (image) contents.tensors = image->tensors;
    if (text) contents.tensors.insert(text->tensors.begin(), text->tensors.end());
    const float logit_scale = std::log(100.0f);
    contents.tensors["logit_scale"] = Tensor::from_f32({}, std::span<const float>(&logit_scale, 1));
    contents.storage = parse_storage_type(options.weights);
    std::optional<Tokenizer> tokenizer;
    if (!options.vocabulary.empty()) tokenizer = Tokenizer::from_file(options.vocabulary);
    contents.tokenizer = tokenizer ? &*tokenizer : nullptr;
    write_model_file(output, contents);
    summary.architecture = config.name;
    summary.image = image.has_value();
    summary.text = text.has_value();
    summary.tensors = contents.tensors.size() - 1;  // logit_scale is metadata
    summary.output_bytes = fs::file_size(output);
#endif
    return summary;
}

void export_coreml(const fs::path& model_file, const fs::path& output, const CoreMLExportOptions& options) {
    require_coreml();
#ifdef MCLIP_HAVE_COREML
    const GgufFile file = GgufFile::open(model_file);
    const ModelConfig config = model_file_config(file);
    const WeightSource weights = WeightSource::from_gguf(file);
    TensorMap tensors;
    for (const auto& info : file.tensors()) tensors[info.name] = weights.get_any_shape(info.name);
    coreml::ExportOptions export_options;
    export_options.encoder = options.encoder;
    export_options.compute = options.compute;
    export_options.weights = options.weights;
    export_options.target = options.target;
    if (!options.labels.empty()) {
        if (options.encoder != "image") throw Error(ErrorCode::invalid_argument, "--labels makes an image classifier: it needs --encoder image");
        // The class weights are computed in float32 whatever this CPU's fastest precision is.
        ModelParams params;
        params.precision = "f32";
        const Model model = Model::load(model_file.string(), params);
        if (!model.info().has_text_encoder || !model.info().has_tokenizer) {
            throw Error(ErrorCode::invalid_input, model_file.string() + ": a classifier needs the text encoder and the tokenizer for its labels");
        }
        const LabelSet labels = model.labels(options.labels, options.templates.empty() ? default_templates() : options.templates);
        Tensor weights = Tensor::from_f32({labels.classes.rows, labels.classes.dim}, labels.classes.values);
        for (int64_t i = 0; i < weights.elements(); ++i) weights.f32()[i] *= model.logit_scale();
        export_options.class_labels = labels.labels;
        export_options.class_weights = std::move(weights);
    }
    coreml::export_package(config, tensors, output, export_options);
#endif
}

}  // namespace mclip
