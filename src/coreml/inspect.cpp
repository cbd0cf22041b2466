// The inspector's report: everything a reader can say about a package without running it. The
// field names follow the fixtures' expected_info.json (docs/coreml.md lists them).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "common/error.h"
#include "coreml/package.h"

namespace mclip::coreml {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kComputeRule = "dtype of the float outputs of all ops except const, constexpr_*, cast and the ImageType scale/bias ops";
const char* kStorageRule =
    "summary = storage kinds of the weight constants held in weight.bin (compressed kinds first); 'immediate ...' = float tensors "
    "stored inline in model.mlmodel (not in the summary)";

bool is_float(spec::DataType type) {
    return type == spec::FLOAT16 || type == spec::FLOAT32 || type == spec::BFLOAT16 || type == spec::FLOAT64;
}

bool is_constexpr(const std::string& type) { return type.rfind("constexpr_", 0) == 0; }

json shape_json(const Shape& shape) {
    json out = json::array();
    for (int64_t d : shape) out.push_back(d);
    return out;
}

// A Value as plain JSON: strings, numbers (arrays for tensors of rank ≥ 1), dictionaries.
json value_json(const Package& package, const spec::Value& value) {
    if (value.has_immediatevalue() && value.immediatevalue().has_dictionary()) {
        json out = json::object();
        for (const auto& pair : value.immediatevalue().dictionary().values()) {
            const json key = value_json(package, pair.key());
            out[key.is_string() ? key.get<std::string>() : key.dump()] = value_json(package, pair.value());
        }
        return out;
    }
    if (value.has_immediatevalue() && value.immediatevalue().has_tensor() && value.immediatevalue().tensor().has_strings()) {
        const auto& strings = value.immediatevalue().tensor().strings().values();
        if (tensor_shape(value.type()).empty() && strings.size() == 1) return strings[0];
        return json(std::vector<std::string>(strings.begin(), strings.end()));
    }
    return nullptr;
}

// The elements of a small numeric value as JSON numbers (integers stay integers).
json numbers_json(const RawValue& raw) {
    json out = json::array();
    auto read = [&](auto tag, size_t i) {
        decltype(tag) v;
        std::memcpy(&v, raw.bytes.data() + i * sizeof v, sizeof v);
        return v;
    };
    auto each = [&](auto tag) {
        for (size_t i = 0; i < raw.bytes.size() / sizeof tag; ++i) out.push_back(read(tag, i));
    };
    switch (raw.dtype) {
        case spec::INT8: each(int8_t{}); break;
        case spec::UINT8: each(uint8_t{}); break;
        case spec::INT16: each(int16_t{}); break;
        case spec::UINT16: each(uint16_t{}); break;
        case spec::INT32: each(int32_t{}); break;
        case spec::UINT32: each(uint32_t{}); break;
        case spec::INT64: each(int64_t{}); break;
        case spec::UINT64: each(uint64_t{}); break;
        case spec::FLOAT32: each(float{}); break;
        case spec::FLOAT64: each(double{}); break;
        case spec::FLOAT16:
            for (size_t i = 0; i < raw.bytes.size() / 2; ++i) out.push_back(f16_to_f32(read(uint16_t{}, i)));
            break;
        case spec::BOOL: each(uint8_t{}); break;
        default: break;
    }
    return out;
}

std::string dtype_of(const spec::ValueType& type) {
    if (type.has_dictionarytype()) {
        return "dict(" + dtype_of(type.dictionarytype().keytype()) + " -> " + dtype_of(type.dictionarytype().valuetype()) + ")";
    }
    return type.has_tensortype() ? mil_dtype_name(type.tensortype().datatype()) : std::string("?");
}

std::string array_dtype_name(spec::ArrayFeatureType::ArrayDataType type) {
    switch (type) {
        case spec::ArrayFeatureType::FLOAT32: return "float32";
        case spec::ArrayFeatureType::FLOAT16: return "float16";
        case spec::ArrayFeatureType::DOUBLE: return "float64";
        case spec::ArrayFeatureType::INT32: return "int32";
        default: return "invalid";
    }
}

std::string color_space_name(spec::ImageFeatureType::ColorSpace space) {
    switch (space) {
        case spec::ImageFeatureType::RGB: return "RGB";
        case spec::ImageFeatureType::BGR: return "BGR";
        case spec::ImageFeatureType::GRAYSCALE: return "GRAYSCALE";
        case spec::ImageFeatureType::GRAYSCALE_FLOAT16: return "GRAYSCALE_FLOAT16";
        default: return "INVALID";
    }
}

json features_json(const google::protobuf::RepeatedPtrField<spec::FeatureDescription>& features,
                   const std::map<std::string, const spec::ValueType*>& program_types) {
    json out = json::array();
    for (const auto& feature : features) {
        json entry;
        entry["name"] = feature.name();
        const auto& type = feature.type();
        if (type.has_imagetype()) {
            entry["kind"] = "image";
        } else if (type.has_multiarraytype()) {
            entry["kind"] = "multiArray";
        } else if (type.has_dictionarytype()) {
            entry["kind"] = "dictionary";
        } else if (type.has_stringtype()) {
            entry["kind"] = "string";
        } else if (type.has_int64type()) {
            entry["kind"] = "int64";
        } else if (type.has_doubletype()) {
            entry["kind"] = "double";
        } else {
            entry["kind"] = "unknown";
        }
        const auto found = program_types.find(feature.name());
        if (found != program_types.end()) {
            entry["shape"] = shape_json(tensor_shape(*found->second));
            entry["dtype"] = dtype_of(*found->second);
        }
        entry["shortDescription"] = feature.shortdescription();
        if (type.has_imagetype()) {
            entry["colorSpace"] = color_space_name(type.imagetype().colorspace());
            entry["width"] = type.imagetype().width();
            entry["height"] = type.imagetype().height();
        } else if (type.has_multiarraytype()) {
            entry["description_shape"] = json(std::vector<int64_t>(type.multiarraytype().shape().begin(), type.multiarraytype().shape().end()));
            entry["description_dtype"] = array_dtype_name(type.multiarraytype().datatype());
        }
        out.push_back(entry);
    }
    return out;
}

// A weight constant: a const whose value is a float tensor of rank ≥ 1, or any constexpr op.
bool is_weight(const spec::Operation& op) {
    if (is_constexpr(op.type())) return true;
    if (op.type() != "const") return false;
    const auto found = op.attributes().find("val");
    if (found == op.attributes().end() || !found->second.type().has_tensortype()) return false;
    const auto& type = found->second.type().tensortype();
    return is_float(type.datatype()) && type.rank() >= 1;
}

struct StorageCount {
    int64_t tensors = 0;
    int64_t elements = 0;
};

json inspect_package(const fs::path& path) {
    const Package package = read_package(path);
    const spec::Model& model = package.model;
    json doc;
    doc["file"] = fs::path(path).lexically_normal().filename().empty() ? fs::path(path).lexically_normal().parent_path().filename().string()
                                                                        : fs::path(path).lexically_normal().filename().string();
    doc["format"] = "mlpackage";
    auto item_json = [](const ManifestItem& item) {
        return json{{"path", item.path}, {"name", item.name}, {"author", item.author}, {"description", item.description}};
    };
    json items = json::array();
    for (const auto& item : package.items) items.push_back(item_json(item));
    doc["manifest"] = {{"fileFormatVersion", package.format_version}, {"rootModel", item_json(package.root_item)}, {"items", items}};
    doc["specificationVersion"] = model.specificationversion();
    doc["modelType"] = model.has_mlprogram() ? "mlProgram" : model.has_neuralnetwork() ? "neuralNetwork" : "other";
    const auto& metadata = model.description().metadata();
    json user = json::object();
    for (const auto& [key, value] : metadata.userdefined()) user[key] = value;
    doc["metadata"] = {{"shortDescription", metadata.shortdescription()},
                       {"versionString", metadata.versionstring()},
                       {"author", metadata.author()},
                       {"license", metadata.license()},
                       {"userDefined", user}};
    if (!model.description().predictedfeaturename().empty()) {
        doc["classifier"] = {{"predictedFeatureName", model.description().predictedfeaturename()},
                             {"predictedProbabilitiesName", model.description().predictedprobabilitiesname()}};
    }

    if (!model.has_mlprogram()) {
        doc["inputs"] = features_json(model.description().input(), {});
        doc["outputs"] = features_json(model.description().output(), {});
        doc["quantization"] = "unknown";
        return doc;
    }

    const spec::Function& function = main_function(model);
    const spec::Block& block = main_block(model);
    json functions = json::array();
    std::set<std::string> function_names;
    for (const auto& [name, f] : model.mlprogram().functions()) function_names.insert(name);
    for (const auto& name : function_names) functions.push_back(name);
    json attributes = json::object();
    for (const auto& [key, value] : model.mlprogram().attributes()) attributes[key] = value_json(package, value);
    doc["program"] = {{"version", model.mlprogram().version()}, {"functions", functions}, {"function", "main"},
                      {"opset", function.opset()}, {"attributes", attributes}};

    // The MIL types of the function inputs and of every op output, by variable name.
    std::map<std::string, const spec::ValueType*> types;
    for (const auto& input : function.inputs()) types[input.name()] = &input.type();
    for (const auto& op : block.operations()) {
        for (const auto& output : op.outputs()) types[output.name()] = &output.type();
    }
    doc["inputs"] = features_json(model.description().input(), types);
    doc["outputs"] = features_json(model.description().output(), types);
    doc["block_outputs"] = json(std::vector<std::string>(block.outputs().begin(), block.outputs().end()));
    doc["op_count"] = block.operations_size();

    // Op histogram, most frequent first, ties by name.
    std::map<std::string, int64_t> histogram;
    for (const auto& op : block.operations()) ++histogram[op.type()];
    std::vector<std::pair<std::string, int64_t>> sorted(histogram.begin(), histogram.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    json ops = json::object();
    for (const auto& [type, count] : sorted) ops[type] = count;
    doc["ops"] = ops;

    // Which op produces each variable.
    std::map<std::string, const spec::Operation*> producer;
    for (const auto& op : block.operations()) {
        for (const auto& output : op.outputs()) producer[output.name()] = &op;
    }
    auto binding_name = [](const spec::Operation& op, const std::string& param) -> std::string {
        const auto found = op.inputs().find(param);
        if (found == op.inputs().end() || found->second.arguments_size() != 1 || !found->second.arguments(0).has_name()) return {};
        return found->second.arguments(0).name();
    };

    // ImageType preprocessing: a mul of the image input by a scalar const, then optionally an add
    // of a per-channel const, as the first consumers of the input.
    json preprocessing = json::array();
    std::set<const spec::Operation*> preprocessing_ops;
    for (const auto& feature : model.description().input()) {
        if (!feature.type().has_imagetype()) continue;
        json entry{{"input", feature.name()}, {"scale", 1.0}, {"bias", json::array()}, {"ops", json::array()}};
        std::string current = feature.name();
        int channels = feature.type().imagetype().colorspace() == spec::ImageFeatureType::GRAYSCALE ? 1 : 3;
        std::vector<double> bias(channels, 0.0);
        for (const char* step : {"mul", "add"}) {
            const spec::Operation* found_op = nullptr;
            for (const auto& op : block.operations()) {
                if (op.type() == step && binding_name(op, "x") == current) {
                    found_op = &op;
                    break;
                }
            }
            if (!found_op) break;
            const std::string y = binding_name(*found_op, "y");
            const auto y_op = producer.find(y);
            if (y_op == producer.end() || y_op->second->type() != "const") break;
            const RawValue raw = raw_value(package, y_op->second->attributes().at("val"), "op '" + op_name(*y_op->second) + "'");
            const json values = numbers_json(raw);
            if (std::string(step) == "mul") {
                if (values.size() != 1) break;
                entry["scale"] = values[0];
            } else {
                if (static_cast<int>(values.size()) != channels && values.size() != 1) break;
                for (int c = 0; c < channels; ++c) bias[c] = values[values.size() == 1 ? 0 : c].get<double>();
            }
            entry["ops"].push_back({{"op", op_name(*found_op)}, {"type", step}, {"x", current}, {"y", y},
                                    {"y_shape", shape_json(raw.shape)}, {"y_dtype", mil_dtype_name(raw.dtype)}});
            preprocessing_ops.insert(found_op);
            current = found_op->outputs(0).name();
        }
        entry["bias"] = bias;
        preprocessing.push_back(entry);
    }
    doc["preprocessing"] = preprocessing;

    // Compute precision from the float outputs of the compute ops.
    std::map<std::string, int64_t> float_outputs;
    for (const auto& op : block.operations()) {
        if (op.type() == "const" || is_constexpr(op.type()) || op.type() == "cast" || preprocessing_ops.count(&op)) continue;
        for (const auto& output : op.outputs()) {
            if (output.type().has_tensortype() && is_float(output.type().tensortype().datatype())) {
                ++float_outputs[mil_dtype_name(output.type().tensortype().datatype())];
            }
        }
    }
    std::string compute = float_outputs.empty() ? "none" : float_outputs.size() == 1 ? float_outputs.begin()->first : "mixed";
    doc["compute_precision"] = {{"summary", compute}, {"float_op_outputs", float_outputs}, {"rule", kComputeRule}};

    // Weight constants and their storage.
    json weights = json::array();
    std::map<std::string, StorageCount> by_kind;
    std::set<std::string> blob_kinds;
    for (const auto& op : block.operations()) {
        if (!is_weight(op)) continue;
        const spec::ValueType& out_type = op.outputs(0).type();
        const Shape shape = tensor_shape(out_type);
        json entry{{"op", op_name(op)}, {"output", op.outputs(0).name()}, {"op_type", op.type()}, {"shape", shape_json(shape)},
                   {"dtype", dtype_of(out_type)}};
        std::string kind;
        bool in_blob = false;
        if (op.type() == "const") {
            const spec::Value& val = op.attributes().at("val");
            in_blob = val.has_blobfilevalue();
            entry["storage"] = dtype_of(val.type());
            entry["location"] = in_blob ? "blob" : "immediate";
            if (in_blob) {
                entry["blob"] = {{"val", {{"file", val.blobfilevalue().filename()}, {"offset", val.blobfilevalue().offset()}}}};
                kind = dtype_of(val.type());
            } else {
                kind = "immediate " + dtype_of(val.type());
            }
        } else {
            json blob = json::object();
            json params = json::object();
            for (const auto& [key, value] : op.attributes()) {
                if (key == "name") continue;
                if (value.has_blobfilevalue()) {
                    blob[key] = {{"file", value.blobfilevalue().filename()}, {"offset", value.blobfilevalue().offset()},
                                 {"dtype", dtype_of(value.type())}, {"shape", shape_json(tensor_shape(value.type()))}};
                } else {
                    const RawValue raw = raw_value(package, value, "op '" + op_name(op) + "' " + key);
                    params[key] = {{"dtype", mil_dtype_name(raw.dtype)}, {"shape", shape_json(raw.shape)}, {"value", numbers_json(raw)}};
                }
            }
            in_blob = !blob.empty();
            entry["location"] = in_blob ? "blob" : "immediate";
            if (in_blob) entry["blob"] = blob;
            if (!params.empty()) entry["params"] = params;
            if (op.type() == "constexpr_lut_to_dense") {
                const spec::Value& lut = op.attributes().at("lut");
                const int64_t entries = shape_elements(tensor_shape(lut.type()));
                int nbits = 0;
                while ((int64_t{1} << nbits) < entries) ++nbits;
                entry["storage"] = "lut" + std::to_string(nbits);
                entry["nbits"] = nbits;
                entry["lut_dtype"] = dtype_of(lut.type());
                kind = "palettized " + std::to_string(nbits) + "-bit (" + dtype_of(lut.type()) + " lut)";
            } else if (op.type() == "constexpr_affine_dequantize") {
                const std::string qtype = dtype_of(op.attributes().at("quantized_data").type());
                const RawValue axis = raw_value(package, op.attributes().at("axis"), "op '" + op_name(op) + "' axis");
                entry["storage"] = "linear " + qtype;
                entry["axis"] = numbers_json(axis).at(0);
                kind = "linear " + qtype + " (" + dtype_of(op.attributes().at("scale").type()) + " scale)";
            } else {
                entry["storage"] = op.type();
                kind = op.type();
            }
            if (!in_blob) kind = "immediate " + kind;
        }
        if (in_blob) blob_kinds.insert(kind);
        by_kind[kind].tensors += 1;
        by_kind[kind].elements += shape_elements(shape);
        weights.push_back(entry);
    }
    // Compressed kinds first, then fp16, then fp32 (and anything else).
    std::vector<std::string> order(blob_kinds.begin(), blob_kinds.end());
    auto rank = [](const std::string& kind) { return kind == "fp16" ? 1 : kind == "fp32" ? 2 : (kind.find(' ') != std::string::npos ? 0 : 3); };
    std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
    std::string summary;
    for (const auto& kind : order) summary += (summary.empty() ? "" : " + ") + kind;
    json kinds = json::object();
    for (const auto& [kind, count] : by_kind) kinds[kind] = {{"tensors", count.tensors}, {"elements", count.elements}};
    doc["weight_storage"] = {{"summary", summary.empty() ? "none" : summary}, {"by_kind", kinds}, {"rule", kStorageRule}};
    doc["weights"] = weights;
    if (package.blobs) {
        doc["weight_file"] = {{"path", fs::relative(package.blob_path, package.root).generic_string()},
                              {"version", package.blobs->version()},
                              {"blob_count", package.blobs->blob_count()},
                              {"bytes", package.blobs->file_size()}};
    }
    // The one-word answer the original loader printed.
    std::string quantization = "none";
    if (!order.empty()) {
        const std::string& first = order.front();
        if (first.rfind("palettized ", 0) == 0) {
            quantization = "lut" + first.substr(11, first.find('-') - 11);
        } else if (first.rfind("linear ", 0) == 0) {
            quantization = first.substr(7, first.find(' ', 7) - 7);
        } else {
            quantization = first;
        }
    }
    doc["quantization"] = quantization;
    return doc;
}

// model.mil, the compiled program as text: `func main<ios16>(...) {` then one statement per
// line, `TYPE NAME = OP(ARGS)[ATTRIBUTES];`. Gives the opset and the op histogram, for compiled
// models whose metadata.json predates mlProgramOperationTypeHistogram.
struct MilText {
    std::string opset;
    std::map<std::string, int64_t> ops;
};

constexpr uintmax_t kMaxMilTextBytes = 64ull << 20;

MilText read_mil_text(const fs::path& path) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) throw Error(ErrorCode::io, path.string() + ": cannot read (" + ec.message() + ")");
    if (size > kMaxMilTextBytes) {
        throw Error(ErrorCode::invalid_input, path.string() + ": " + std::to_string(size) + " bytes, more than the 64 MiB a program's text may take");
    }
    std::ifstream in(path);
    if (!in) throw Error(ErrorCode::io, path.string() + ": cannot open");
    static const std::regex function(R"(^\s*func\s+main<([A-Za-z0-9_]+)>)");
    static const std::regex statement(R"(^\s*\S.*?\s[A-Za-z_][A-Za-z0-9_]*\s*=\s*([a-z_][a-z0-9_]*)\s*\()");
    MilText mil;
    bool in_main = false;
    std::string line;
    std::smatch match;
    while (std::getline(in, line)) {
        if (std::regex_search(line, match, function)) {
            mil.opset = match[1];
            in_main = true;
            continue;
        }
        if (!in_main) continue;
        if (line.find("} ->") != std::string::npos) break;  // the end of main's block
        if (std::regex_search(line, match, statement)) ++mil.ops[match[1]];
    }
    return mil;
}

// A compiled model: metadata.json (an array of one object) says what the package said.
json inspect_compiled(const fs::path& path) {
    const fs::path metadata_path = path / "metadata.json";
    if (!fs::exists(metadata_path)) {
        throw Error(ErrorCode::invalid_input, path.string() + ": no metadata.json (not a compiled Core ML model)");
    }
    std::ifstream in(metadata_path);
    json parsed;
    try {
        parsed = json::parse(in);
    } catch (const json::exception& e) {
        throw Error(ErrorCode::invalid_input, metadata_path.string() + ": not valid JSON: " + e.what());
    }
    if (!parsed.is_array() || parsed.empty() || !parsed[0].is_object()) {
        throw Error(ErrorCode::invalid_input, metadata_path.string() + ": expected a JSON array holding one object");
    }
    const json& meta = parsed[0];
    json doc;
    doc["file"] = path.lexically_normal().filename().string();
    doc["format"] = "mlmodelc";
    doc["specificationVersion"] = meta.value("specificationVersion", 0);
    const std::string type = meta.contains("modelType") && meta["modelType"].is_object() ? meta["modelType"].value("name", "") : "";
    doc["modelType"] = type == "MLModelType_mlProgram" ? "mlProgram" : type == "MLModelType_neuralNetwork" ? "neuralNetwork" : type;
    doc["storagePrecision"] = meta.value("storagePrecision", "");
    doc["computePrecision"] = meta.value("computePrecision", "");
    doc["ops"] = meta.value("mlProgramOperationTypeHistogram", json::object());
    doc["metadata"] = {{"shortDescription", meta.value("shortDescription", "")}, {"versionString", meta.value("version", "")},
                       {"author", meta.value("author", "")}, {"license", meta.value("license", "")},
                       {"userDefined", meta.value("userDefinedMetadata", json::object())}};
    doc["inputs"] = meta.value("inputSchema", json::array());
    doc["outputs"] = meta.value("outputSchema", json::array());
    if (meta.contains("availability")) doc["availability"] = meta["availability"];
    if (fs::exists(path / "model.mil")) {
        const MilText mil = read_mil_text(path / "model.mil");
        if (!mil.opset.empty()) doc["opset"] = mil.opset;
        if (doc["ops"].empty()) doc["ops"] = mil.ops;
    }
    const std::string storage = meta.value("storagePrecision", "");
    std::string quantization = storage;
    const auto palettized = storage.find("Palettized (");
    if (palettized != std::string::npos) {
        quantization = "lut" + storage.substr(palettized + 12, storage.find(' ', palettized + 12) - palettized - 12);
    } else if (storage.find("Int8") != std::string::npos || storage.find("Quantized") != std::string::npos) {
        quantization = "int8";
    } else if (storage == "Float16") {
        quantization = "fp16";
    } else if (storage == "Float32") {
        quantization = "fp32";
    }
    doc["quantization"] = quantization;
    if (fs::exists(path / "weights" / "weight.bin")) {
        const auto blobs = BlobFile::open(path / "weights" / "weight.bin");
        doc["weight_file"] = {{"path", "weights/weight.bin"}, {"version", blobs->version()}, {"blob_count", blobs->blob_count()},
                              {"bytes", blobs->file_size()}};
    }
    return doc;
}

}  // namespace

json inspect(const fs::path& path) {
    if (fs::exists(path / "Manifest.json")) return inspect_package(path);
    if (fs::exists(path / "metadata.json") || path.extension() == ".mlmodelc") return inspect_compiled(path);
    return inspect_package(path);
}

}  // namespace mclip::coreml
