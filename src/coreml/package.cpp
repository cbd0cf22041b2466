#include "coreml/package.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "common/error.h"

namespace mclip::coreml {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(const std::string& what) { throw Error(ErrorCode::invalid_input, what); }

std::string read_whole(const fs::path& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_system_error(path.string(), "cannot open " + what);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw_system_error(path.string(), "cannot read " + what);
    return bytes;
}

// A manifest path must name something inside Data/: relative, without ".." or empty components.
void check_item_path(const fs::path& manifest, const std::string& path) {
    const fs::path item(path);
    if (path.empty() || item.is_absolute() || path.find('\\') != std::string::npos) {
        bad(manifest.string() + ": item path '" + path + "' is not a relative path inside the package");
    }
    for (const auto& part : item) {
        if (part == "..") bad(manifest.string() + ": item path '" + path + "' leaves the package ('..')");
    }
}

ManifestItem item_from_json(const fs::path& manifest, const nlohmann::json& entry) {
    if (!entry.is_object()) bad(manifest.string() + ": an itemInfoEntries entry is not an object");
    ManifestItem item;
    auto text = [&](const char* key) -> std::string {
        const auto found = entry.find(key);
        if (found == entry.end()) return {};
        if (!found->is_string()) bad(manifest.string() + ": item field '" + key + "' is not a string");
        return found->get<std::string>();
    };
    item.path = text("path");
    item.name = text("name");
    item.author = text("author");
    item.description = text("description");
    check_item_path(manifest, item.path);
    return item;
}

const std::set<std::string>& known_ops() {
    // The MIL op types of the iOS15–iOS18 op sets (coremltools' mil/ops/defs), by family.
    static const std::set<std::string> ops = {
        // constants and compression
        "const", "constexpr_affine_dequantize", "constexpr_lut_to_dense", "constexpr_sparse_to_dense", "constexpr_cast",
        "constexpr_blockwise_shift_scale", "constexpr_sparse_blockwise_shift_scale", "constexpr_lut_to_sparse",
        // activations
        "clamped_relu", "elu", "gelu", "leaky_relu", "linear_activation", "prelu", "relu", "relu6", "scaled_tanh", "sigmoid",
        "sigmoid_hard", "silu", "softplus", "softplus_parametric", "softmax", "softsign", "thresholded_relu",
        // elementwise binary
        "add", "equal", "floor_div", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or", "logical_xor",
        "maximum", "minimum", "mod", "mul", "not_equal", "pow", "real_div", "sub",
        // elementwise unary
        "abs", "acos", "asin", "atan", "atanh", "cast", "ceil", "clip", "cos", "cosh", "erf", "exp", "exp2", "floor", "inverse", "log",
        "logical_not", "round", "rsqrt", "sign", "sin", "sinh", "sqrt", "square", "tan", "tanh", "threshold",
        // linear algebra, convolution, pooling, normalization
        "linear", "matmul", "einsum", "conv", "conv_transpose", "avg_pool", "max_pool", "l2_pool", "batch_norm", "instance_norm",
        "l2_norm", "layer_norm", "local_response_norm", "scaled_dot_product_attention",
        // reductions
        "reduce_argmax", "reduce_argmin", "reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp", "reduce_max",
        "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "reduce_sum_square",
        // tensor manipulation
        "band_part", "batch_to_space", "concat", "cumsum", "depth_to_space", "expand_dims", "fill", "fill_like", "flatten2d", "gather",
        "gather_along_axis", "gather_nd", "identity", "non_maximum_suppression", "non_zero", "one_hot", "pad", "pixel_shuffle",
        "pixel_unshuffle", "range_1d", "reshape", "reshape_like", "reverse", "reverse_sequence", "scatter", "scatter_along_axis",
        "scatter_nd", "select", "shape", "slice_by_index", "slice_by_size", "sliding_windows", "space_to_batch", "space_to_depth",
        "split", "squeeze", "stack", "tile", "topk", "transpose", "argsort", "upsample_bilinear", "upsample_nearest_neighbor",
        "resize_bilinear", "resize_nearest_neighbor", "resize", "crop", "crop_resize", "affine", "resample",
        // recurrent, random, image, control flow, state
        "gru", "lstm", "rnn", "random_bernoulli", "random_categorical", "random_normal", "random_uniform", "cond", "while_loop",
        "make_list", "list_length", "list_read", "list_write", "list_gather", "list_scatter", "read_state", "coreml_update_state",
        // classifier outputs
        "classify",
    };
    return ops;
}

void check_ops(const spec::Block& block, const std::string& where) {
    for (const auto& op : block.operations()) {
        if (!known_op_type(op.type())) {
            bad(where + ": unknown MIL op type '" + op.type() + "' (op '" + op_name(op) + "')");
        }
        for (const auto& nested : op.blocks()) check_ops(nested, where);
    }
}

// Every Value an op carries inline or by reference (its attributes and inline input bindings).
template <typename F>
void for_each_value(const spec::Block& block, F&& visit) {
    for (const auto& op : block.operations()) {
        for (const auto& [key, value] : op.attributes()) visit(op, key, value);
        for (const auto& [key, argument] : op.inputs()) {
            for (const auto& binding : argument.arguments()) {
                if (binding.has_value()) visit(op, key, binding.value());
            }
        }
        for (const auto& nested : op.blocks()) for_each_value(nested, visit);
    }
}

size_t mil_dtype_size(spec::DataType type) {
    switch (type) {
        case spec::BOOL:
        case spec::INT8:
        case spec::UINT8: return 1;
        case spec::FLOAT16:
        case spec::BFLOAT16:
        case spec::INT16:
        case spec::UINT16: return 2;
        case spec::FLOAT32:
        case spec::INT32:
        case spec::UINT32: return 4;
        case spec::FLOAT64:
        case spec::INT64:
        case spec::UINT64: return 8;
        default: return 0;
    }
}

std::optional<BlobType> blob_type_of(spec::DataType type) {
    switch (type) {
        case spec::FLOAT16: return BlobType::f16;
        case spec::FLOAT32: return BlobType::f32;
        case spec::UINT8: return BlobType::u8;
        case spec::INT8: return BlobType::i8;
        case spec::BFLOAT16: return BlobType::bf16;
        case spec::INT16: return BlobType::i16;
        case spec::UINT16: return BlobType::u16;
        case spec::INT32: return BlobType::i32;
        case spec::UINT32: return BlobType::u32;
        default: return std::nullopt;
    }
}

int64_t elements_of(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) return -1;
        n *= d;
    }
    return n;
}

// The blob file a blobFileValue names, relative to the directory holding model.mlmodel.
fs::path blob_file_path(const fs::path& spec_dir, const std::string& file_name) {
    constexpr std::string_view prefix = "@model_path/";
    if (file_name.rfind(prefix, 0) != 0) bad("blob file '" + file_name + "' does not start with @model_path/");
    const std::string relative = file_name.substr(prefix.size());
    check_item_path("model.mlmodel", relative);
    return spec_dir / relative;
}

float to_float(spec::DataType type, const uint8_t* p) {
    switch (type) {
        case spec::FLOAT32: {
            float v;
            std::memcpy(&v, p, 4);
            return v;
        }
        case spec::FLOAT16: {
            uint16_t v;
            std::memcpy(&v, p, 2);
            return f16_to_f32(v);
        }
        case spec::BFLOAT16: {
            uint16_t v;
            std::memcpy(&v, p, 2);
            return bf16_to_f32(v);
        }
        case spec::FLOAT64: {
            double v;
            std::memcpy(&v, p, 8);
            return static_cast<float>(v);
        }
        case spec::INT8: return static_cast<float>(static_cast<int8_t>(*p));
        case spec::UINT8: return static_cast<float>(*p);
        case spec::INT16: {
            int16_t v;
            std::memcpy(&v, p, 2);
            return v;
        }
        case spec::UINT16: {
            uint16_t v;
            std::memcpy(&v, p, 2);
            return v;
        }
        case spec::INT32: {
            int32_t v;
            std::memcpy(&v, p, 4);
            return static_cast<float>(v);
        }
        case spec::UINT32: {
            uint32_t v;
            std::memcpy(&v, p, 4);
            return static_cast<float>(v);
        }
        default: bad("value of type " + mil_dtype_name(type) + " is not numeric");
    }
}

std::vector<float> to_floats(const RawValue& raw) {
    const size_t size = mil_dtype_size(raw.dtype);
    std::vector<float> out(raw.bytes.size() / size);
    for (size_t i = 0; i < out.size(); ++i) out[i] = to_float(raw.dtype, raw.bytes.data() + i * size);
    return out;
}

const spec::Value& attribute(const spec::Operation& op, const std::string& key) {
    const auto found = op.attributes().find(key);
    if (found == op.attributes().end()) bad("op '" + op_name(op) + "' (" + op.type() + ") has no '" + key + "' attribute");
    return found->second;
}

bool is_float(spec::DataType type) {
    return type == spec::FLOAT16 || type == spec::FLOAT32 || type == spec::BFLOAT16 || type == spec::FLOAT64;
}

}  // namespace

bool known_op_type(const std::string& type) { return known_ops().count(type) != 0; }

std::string op_name(const spec::Operation& op) {
    const auto found = op.attributes().find("name");
    if (found == op.attributes().end() || !found->second.has_immediatevalue() || !found->second.immediatevalue().has_tensor() ||
        found->second.immediatevalue().tensor().strings().values_size() != 1) {
        return {};
    }
    return found->second.immediatevalue().tensor().strings().values(0);
}

std::string mil_dtype_name(spec::DataType type) {
    switch (type) {
        case spec::BOOL: return "bool";
        case spec::STRING: return "string";
        case spec::FLOAT16: return "fp16";
        case spec::FLOAT32: return "fp32";
        case spec::FLOAT64: return "fp64";
        case spec::BFLOAT16: return "bf16";
        case spec::INT8: return "int8";
        case spec::INT16: return "int16";
        case spec::INT32: return "int32";
        case spec::INT64: return "int64";
        case spec::UINT8: return "uint8";
        case spec::UINT16: return "uint16";
        case spec::UINT32: return "uint32";
        case spec::UINT64: return "uint64";
        default: return "type" + std::to_string(static_cast<int>(type));
    }
}

Shape tensor_shape(const spec::ValueType& type) {
    Shape shape;
    if (!type.has_tensortype()) return shape;
    for (const auto& dim : type.tensortype().dimensions()) {
        shape.push_back(dim.has_constant() ? static_cast<int64_t>(dim.constant().size()) : -1);
    }
    return shape;
}

const spec::Function& main_function(const spec::Model& model) {
    if (!model.has_mlprogram()) bad("the model is not an ML Program");
    const auto& functions = model.mlprogram().functions();
    const auto found = functions.find("main");
    if (found == functions.end()) bad("the ML Program has no function 'main'");
    return found->second;
}

const spec::Block& main_block(const spec::Model& model) {
    const spec::Function& function = main_function(model);
    const auto found = function.block_specializations().find(function.opset());
    if (found == function.block_specializations().end()) {
        bad("function 'main' has no block for its opset '" + function.opset() + "'");
    }
    return found->second;
}

RawValue raw_value(const Package& package, const spec::Value& value, const std::string& what) {
    RawValue raw;
    if (!value.type().has_tensortype()) bad(what + ": value is not a tensor");
    raw.dtype = value.type().tensortype().datatype();
    raw.shape = tensor_shape(value.type());
    const int64_t count = elements_of(raw.shape);
    const size_t size = mil_dtype_size(raw.dtype);
    if (count < 0 || size == 0) bad(what + ": value of type " + mil_dtype_name(raw.dtype) + " has no fixed byte size");
    if (value.has_blobfilevalue()) {
        if (!package.blobs) bad(what + ": refers to a weight file the package does not have");
        const BlobRecord& record = package.blobs->record(value.blobfilevalue().offset());
        const auto data = package.blobs->data(record);
        raw.bytes.assign(data.begin(), data.end());
    } else if (value.has_immediatevalue() && value.immediatevalue().has_tensor()) {
        const auto& tensor = value.immediatevalue().tensor();
        auto append = [&raw](const auto& values) {
            for (const auto v : values) {
                const auto* p = reinterpret_cast<const uint8_t*>(&v);
                raw.bytes.insert(raw.bytes.end(), p, p + sizeof v);
            }
        };
        if (tensor.has_bytes()) {
            raw.bytes.assign(tensor.bytes().values().begin(), tensor.bytes().values().end());
        } else if (tensor.has_floats() && raw.dtype == spec::FLOAT32) {
            append(tensor.floats().values());
        } else if (tensor.has_doubles() && raw.dtype == spec::FLOAT64) {
            append(tensor.doubles().values());
        } else if (tensor.has_ints() && raw.dtype == spec::INT32) {
            append(tensor.ints().values());
        } else if (tensor.has_longints() && raw.dtype == spec::INT64) {
            append(tensor.longints().values());
        } else if (tensor.has_bools() && raw.dtype == spec::BOOL) {
            for (const bool b : tensor.bools().values()) raw.bytes.push_back(b ? 1 : 0);
        } else {
            bad(what + ": inline value of type " + mil_dtype_name(raw.dtype) + " is not stored in a form mclip reads");
        }
    } else {
        bad(what + ": value is neither inline nor in the weight file");
    }
    if (raw.bytes.size() != static_cast<size_t>(count) * size) {
        bad(what + ": holds " + std::to_string(raw.bytes.size()) + " bytes but its type " + mil_dtype_name(raw.dtype) + " " +
            shape_to_string(raw.shape) + " needs " + std::to_string(static_cast<size_t>(count) * size));
    }
    return raw;
}

Tensor dense_constant(const Package& package, const spec::Operation& op) {
    const std::string name = op_name(op);
    const std::string what = "op '" + name + "'";
    if (op.type() == "const") {
        const RawValue raw = raw_value(package, attribute(op, "val"), what);
        if (!is_float(raw.dtype)) bad(what + ": not a floating-point constant");
        return Tensor::from_f32(raw.shape, to_floats(raw));
    }
    if (op.type() == "constexpr_lut_to_dense") {
        const RawValue lut = raw_value(package, attribute(op, "lut"), what + " lut");
        const RawValue indices = raw_value(package, attribute(op, "indices"), what + " indices");
        const RawValue shape_value = raw_value(package, attribute(op, "shape"), what + " shape");
        if (!is_float(lut.dtype) || indices.dtype != spec::UINT8) bad(what + ": LUT must be float and indices uint8");
        const size_t entries = lut.bytes.size() / mil_dtype_size(lut.dtype);
        int nbits = 0;
        while ((size_t{1} << nbits) < entries) ++nbits;
        if ((size_t{1} << nbits) != entries || nbits < 1 || nbits > 8) bad(what + ": LUT has " + std::to_string(entries) + " entries (not 2^n, n ≤ 8)");
        Shape shape;
        for (const float d : to_floats(shape_value)) shape.push_back(static_cast<int64_t>(d));
        const int64_t count = elements_of(shape);
        if (count < 0 || static_cast<uint64_t>(count) * nbits > indices.bytes.size() * 8ull) {
            bad(what + ": " + std::to_string(indices.bytes.size()) + " index bytes do not hold " + shape_to_string(shape) + " " +
                std::to_string(nbits) + "-bit indices");
        }
        const std::vector<float> table = to_floats(lut);
        std::vector<float> dense(static_cast<size_t>(count));
        for (size_t i = 0; i < dense.size(); ++i) {
            // Index i occupies bits i·n … i·n+n−1, least significant bit of each byte first.
            unsigned index = 0;
            for (int b = 0; b < nbits; ++b) {
                const size_t bit = i * nbits + b;
                index |= ((indices.bytes[bit / 8] >> (bit % 8)) & 1u) << b;
            }
            dense[i] = table[index];
        }
        return Tensor::from_f32(shape, dense);
    }
    if (op.type() == "constexpr_affine_dequantize") {
        const RawValue data = raw_value(package, attribute(op, "quantized_data"), what + " quantized_data");
        const RawValue zero = raw_value(package, attribute(op, "zero_point"), what + " zero_point");
        const RawValue scale = raw_value(package, attribute(op, "scale"), what + " scale");
        const RawValue axis_value = raw_value(package, attribute(op, "axis"), what + " axis");
        if (!is_float(scale.dtype)) bad(what + ": scale is not floating-point");
        const std::vector<float> q = to_floats(data), zp = to_floats(zero), s = to_floats(scale);
        int64_t axis = static_cast<int64_t>(to_floats(axis_value).at(0));
        const int64_t rank = static_cast<int64_t>(data.shape.size());
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank) bad(what + ": axis out of range");
        const int64_t channels = data.shape[axis];
        int64_t inner = 1;
        for (int64_t d = axis + 1; d < rank; ++d) inner *= data.shape[d];
        auto per_channel = [&](const std::vector<float>& v, const char* label) {
            if (v.size() != 1 && static_cast<int64_t>(v.size()) != channels) {
                bad(what + ": " + label + " has " + std::to_string(v.size()) + " values for " + std::to_string(channels) + " channels");
            }
        };
        per_channel(zp, "zero_point");
        per_channel(s, "scale");
        std::vector<float> dense(q.size());
        for (size_t i = 0; i < q.size(); ++i) {
            const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
            const float value = s[s.size() == 1 ? 0 : c] * (q[i] - zp[zp.size() == 1 ? 0 : c]);
            // The dense tensor has the scale's dtype: the float32 product is rounded to it.
            dense[i] = scale.dtype == spec::FLOAT16 ? f16_to_f32(f32_to_f16(value)) : value;
        }
        return Tensor::from_f32(data.shape, dense);
    }
    throw Error(ErrorCode::unsupported, what + ": constant op type '" + op.type() + "' is not supported");
}

Package read_package(const fs::path& root) {
    Package package;
    package.root = root;
    if (!fs::is_directory(root)) bad(root.string() + ": not a Core ML package (a .mlpackage is a directory)");
    const fs::path manifest_path = root / "Manifest.json";
    if (!fs::exists(manifest_path)) bad(root.string() + ": no Manifest.json (not a Core ML package)");
    nlohmann::json manifest;
    try {
        manifest = nlohmann::json::parse(read_whole(manifest_path, "the manifest"));
    } catch (const nlohmann::json::exception& e) {
        bad(manifest_path.string() + ": not valid JSON: " + e.what());
    }
    if (!manifest.is_object()) bad(manifest_path.string() + ": not a JSON object");
    if (manifest.contains("fileFormatVersion") && manifest["fileFormatVersion"].is_string()) {
        package.format_version = manifest["fileFormatVersion"].get<std::string>();
    }
    const auto entries = manifest.find("itemInfoEntries");
    if (entries == manifest.end() || !entries->is_object()) bad(manifest_path.string() + ": no itemInfoEntries object");
    const auto root_id = manifest.find("rootModelIdentifier");
    if (root_id == manifest.end() || !root_id->is_string()) bad(manifest_path.string() + ": no rootModelIdentifier");
    bool found_root = false;
    for (const auto& [id, entry] : entries->items()) {
        ManifestItem item = item_from_json(manifest_path, entry);
        if (!fs::exists(root / "Data" / item.path)) {
            bad(manifest_path.string() + ": item '" + item.path + "' does not exist in the package");
        }
        if (id == root_id->get<std::string>()) {
            package.root_item = item;
            found_root = true;
        }
        package.items.push_back(std::move(item));
    }
    if (!found_root) bad(manifest_path.string() + ": rootModelIdentifier names no item");
    std::sort(package.items.begin(), package.items.end(), [](const ManifestItem& a, const ManifestItem& b) { return a.path < b.path; });

    package.spec_path = root / "Data" / package.root_item.path;
    if (!fs::is_regular_file(package.spec_path)) bad(package.spec_path.string() + ": the model specification is not a file");
    const std::string bytes = read_whole(package.spec_path, "the model specification");
    if (!package.model.ParseFromString(bytes)) {
        bad(package.spec_path.string() + ": not a Core ML model specification (the protobuf does not parse)");
    }
    if (!package.model.has_mlprogram()) return package;

    const std::string where = package.spec_path.string();
    try {
        check_ops(main_block(package.model), where);
    } catch (const Error& e) {
        if (std::string(e.what()).rfind(where, 0) == 0) throw;
        bad(where + ": " + e.what());
    }
    // Open the weight file when the program refers to one, and check every reference against it.
    std::vector<std::pair<std::string, const spec::Value*>> references;
    for (const auto& [name, function] : package.model.mlprogram().functions()) {
        for (const auto& [opset, block] : function.block_specializations()) {
            for_each_value(block, [&](const spec::Operation& op, const std::string& key, const spec::Value& value) {
                if (value.has_blobfilevalue()) references.emplace_back("op '" + op_name(op) + "' " + key, &value);
            });
        }
    }
    if (references.empty()) return package;
    const fs::path spec_dir = package.spec_path.parent_path();
    package.blob_path = blob_file_path(spec_dir, references.front().second->blobfilevalue().filename());
    for (const auto& [what, value] : references) {
        if (blob_file_path(spec_dir, value->blobfilevalue().filename()) != package.blob_path) {
            bad(where + ": " + what + " refers to a second weight file '" + value->blobfilevalue().filename() + "'");
        }
    }
    if (!fs::exists(package.blob_path)) {
        bad(root.string() + ": the program refers to weights/weight.bin, which the package does not have (" + package.blob_path.string() + ")");
    }
    package.blobs = BlobFile::open(package.blob_path);
    for (const auto& [what, value] : references) {
        const BlobRecord& record = package.blobs->record(value->blobfilevalue().offset());
        const spec::DataType dtype = value->type().tensortype().datatype();
        const auto expected_type = blob_type_of(dtype);
        if (!expected_type || *expected_type != record.type) {
            bad(package.blob_path.string() + ": blob at offset " + std::to_string(record.metadata_offset) + " holds " +
                blob_type_name(static_cast<uint32_t>(record.type)) + " but " + what + " is " + mil_dtype_name(dtype));
        }
        const int64_t count = elements_of(tensor_shape(value->type()));
        if (count < 0 || record.size != static_cast<uint64_t>(count) * mil_dtype_size(dtype)) {
            bad(package.blob_path.string() + ": blob at offset " + std::to_string(record.metadata_offset) + " has " + std::to_string(record.size) +
                " bytes but " + what + " needs " + std::to_string(count * static_cast<int64_t>(mil_dtype_size(dtype))));
        }
    }
    return package;
}

}  // namespace mclip::coreml
