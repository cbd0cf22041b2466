#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstring>

#include "common/error.h"
#include "mclip/atomic_file.h"
#include "io/mapped_file.h"

namespace mclip {
namespace {

struct DTypeName {
    const char* name;
    DType dtype;
};

constexpr DTypeName kDTypeNames[] = {
    {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"F64", DType::f64},
    {"I8", DType::i8},   {"U8", DType::u8},   {"I16", DType::i16},   {"I32", DType::i32},
    {"I64", DType::i64}, {"BOOL", DType::boolean},
};

const char* dtype_name(DType dtype) {
    for (const auto& entry : kDTypeNames) {
        if (entry.dtype == dtype) return entry.name;
    }
    throw Error(ErrorCode::internal, "dtype without a safetensors name");
}

uint64_t read_u64_le(const std::byte* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
    return v;
}

constexpr uint64_t kMaxHeaderBytes = 100u << 20;
constexpr int64_t kMaxElements = int64_t{1} << 40;
// A header nests three levels deep ({name: {"shape": [...]}}); metadata values are strings. A
// deeper header is refused while it is parsed, before printing a nested metadata value back
// (which recurses once per level) could exhaust the stack.
constexpr int kMaxHeaderDepth = 16;
constexpr size_t kMaxTensorRank = 32;

}  // namespace

bool looks_like_safetensors(std::span<const std::byte> head, uint64_t file_size) {
    if (head.size() < 9 || file_size < 10) return false;
    const uint64_t header_size = read_u64_le(head.data());
    return header_size > 1 && header_size <= kMaxHeaderBytes && header_size + 8 <= file_size &&
           static_cast<char>(head[8]) == '{';
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
    auto file = MappedFile::open(path);
    const std::string name = path.string();
    if (file->size() < 8) throw Error(ErrorCode::invalid_input, name + ": too short to be a safetensors file (" + std::to_string(file->size()) + " bytes)");
    const uint64_t header_size = read_u64_le(file->data());
    if (header_size > kMaxHeaderBytes || header_size + 8 > file->size()) {
        throw Error(ErrorCode::invalid_input, name + ": not a safetensors file, or truncated (header length " +
                                                  std::to_string(header_size) + " exceeds the file size " +
                                                  std::to_string(file->size()) + ")");
    }
    nlohmann::json header;
    try {
        const auto limit_depth = [&](int depth, nlohmann::json::parse_event_t, const nlohmann::json&) {
            if (depth > kMaxHeaderDepth) {
                throw Error(ErrorCode::invalid_input, name + ": safetensors header nests deeper than " + std::to_string(kMaxHeaderDepth) + " levels");
            }
            return true;
        };
        header = nlohmann::json::parse(reinterpret_cast<const char*>(file->data() + 8),
                                       reinterpret_cast<const char*>(file->data() + 8 + header_size), limit_depth);
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorCode::invalid_input, name + ": not a safetensors file (header is not JSON: " + e.what() + ")");
    }
    if (!header.is_object()) throw Error(ErrorCode::invalid_input, name + ": safetensors header is not a JSON object");

    SafetensorsFile result;
    const std::byte* data = file->data() + 8 + header_size;
    const uint64_t data_size = file->size() - 8 - header_size;
    std::shared_ptr<const void> owner = file;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
            if (!value.is_object()) throw Error(ErrorCode::invalid_input, name + ": __metadata__ is not an object");
            for (const auto& [mkey, mvalue] : value.items()) {
                result.metadata[mkey] = mvalue.is_string() ? mvalue.get<std::string>() : mvalue.dump();
            }
            continue;
        }
        const std::string where = name + ": tensor '" + key + "'";
        try {
            const std::string dtype_text = value.at("dtype").get<std::string>();
            const DTypeName* found = nullptr;
            for (const auto& entry : kDTypeNames) {
                if (dtype_text == entry.name) found = &entry;
            }
            if (!found) throw Error(ErrorCode::unsupported, where + ": unsupported dtype " + dtype_text);
            const auto& dims = value.at("shape");
            if (!dims.is_array()) throw Error(ErrorCode::invalid_input, where + ": shape is not an array");
            if (dims.size() > kMaxTensorRank) throw Error(ErrorCode::invalid_input, where + ": shape has " + std::to_string(dims.size()) + " dimensions");
            Shape shape;
            int64_t elements = 1;
            for (const auto& d : dims) {
                if (!d.is_number_integer()) throw Error(ErrorCode::invalid_input, where + ": shape holds a non-integer");
                const int64_t dim = d.get<int64_t>();
                if (dim < 0) throw Error(ErrorCode::invalid_input, where + ": negative dimension");
                // Bounded so that the byte count below cannot overflow and match a wrapped size.
                if (dim && elements > kMaxElements / dim) throw Error(ErrorCode::invalid_input, where + ": shape is implausibly large");
                elements *= dim;
                shape.push_back(dim);
            }
            const auto& offsets = value.at("data_offsets");
            if (!offsets.is_array() || offsets.size() != 2) throw Error(ErrorCode::invalid_input, where + ": bad data_offsets");
            const uint64_t begin = offsets[0].get<uint64_t>();
            const uint64_t end = offsets[1].get<uint64_t>();
            if (begin > end || end > data_size) {
                throw Error(ErrorCode::invalid_input, where + ": data [" + std::to_string(begin) + ", " + std::to_string(end) +
                                                          ") lies outside the file (truncated?)");
            }
            const uint64_t expected = static_cast<uint64_t>(shape_elements(shape)) * dtype_size(found->dtype);
            if (end - begin != expected) {
                throw Error(ErrorCode::invalid_input, where + ": holds " + std::to_string(end - begin) + " bytes but shape " +
                                                          shape_to_string(shape) + " needs " + std::to_string(expected));
            }
            result.tensors.emplace(key, Tensor(found->dtype, std::move(shape), const_cast<std::byte*>(data + begin), owner));
        } catch (const nlohmann::json::exception& e) {
            throw Error(ErrorCode::invalid_input, where + ": malformed entry (" + e.what() + ")");
        }
    }
    return result;
}

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& [name, tensor] : tensors) {
        header[name] = {{"dtype", dtype_name(tensor.dtype())},
                        {"shape", tensor.shape()},
                        {"data_offsets", {offset, offset + tensor.bytes()}}};
        offset += tensor.bytes();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
    AtomicFile out(path);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
    out.write(length, 8);
    out.write(text);
    for (const auto& [name, tensor] : tensors) out.write(tensor.data(), tensor.bytes());
    out.commit();
}

}  // namespace mclip
