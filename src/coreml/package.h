// Core ML model packages (.mlpackage directories) and the ML Program inside them: reading and
// validating the manifest, the protobuf specification and the weight file, and the helpers the
// inspector and the importer share to walk the program and decode its constants.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coreml/coreml_spec.pb.h"
#include "coreml/milblob.h"
#include "tensor/tensor.h"

namespace mclip::coreml {

struct ManifestItem {
    std::string path;  // relative to Data/
    std::string name;
    std::string author;
    std::string description;
};

struct Package {
    std::filesystem::path root;        // the .mlpackage directory
    std::string format_version;        // fileFormatVersion
    ManifestItem root_item;            // the model specification
    std::vector<ManifestItem> items;   // all items, sorted by path
    std::filesystem::path spec_path;   // Data/<root item path>
    spec::Model model;
    // weights/weight.bin beside the spec, when the program refers to it (opened and validated).
    std::shared_ptr<const BlobFile> blobs;
    std::filesystem::path blob_path;
};

// Reads and validates a package: Manifest.json (items inside the package and present), the spec
// (parses as a Core ML Model), for an ML Program every op type known and every blob reference
// resolving to a record of weight.bin. Throws Error(invalid_input) naming the problem.
Package read_package(const std::filesystem::path& root);

// The function `main` of the program and its block for the function's opset.
const spec::Function& main_function(const spec::Model& model);
const spec::Block& main_block(const spec::Model& model);

// "fp32", "fp16", "int32", ...
std::string mil_dtype_name(spec::DataType type);
// The shape of a tensor value type (constant dimensions; an unknown one is -1).
Shape tensor_shape(const spec::ValueType& type);

// A constant op's value ("val" of a const, or a constexpr op's dense output) as float32: fp16
// widened, LUTs expanded, affine data dequantized in float32 and rounded to the scale's dtype.
// Throws for ops that are not float constants.
Tensor dense_constant(const Package& package, const spec::Operation& op);

// The raw bytes and element type of a Value (inline or in the blob file).
struct RawValue {
    spec::DataType dtype = spec::UNUSED_TYPE;
    Shape shape;
    std::vector<uint8_t> bytes;  // little-endian elements, row-major
};
RawValue raw_value(const Package& package, const spec::Value& value, const std::string& what);

// True for the op types this reader knows (the iOS15–iOS18 MIL op sets mclip meets).
bool known_op_type(const std::string& type);

// The op's "name" attribute (empty when missing).
std::string op_name(const spec::Operation& op);

// The inspector's report as JSON (the structure docs/coreml.md describes), for a package or a
// compiled .mlmodelc directory.
nlohmann::json inspect(const std::filesystem::path& path);

}  // namespace mclip::coreml
