// GGUF, the single-file model format of the ggml ecosystem (version 3), read and written here.
//
// Layout, all little-endian:
//   uint32 magic "GGUF" | uint32 version (3) | uint64 tensor_count | uint64 kv_count
//   kv_count x { string key | uint32 value_type | value }
//   tensor_count x { string name | uint32 n_dims | uint64 ne[n_dims] | uint32 ggml_type | uint64 offset }
//   zero padding to `general.alignment` (default 32) | tensor data, each tensor at offset (aligned)
// A string is uint64 length + UTF-8 bytes (no terminator). An array value is uint32 element type,
// uint64 count, then the elements. ne[0] is the innermost (fastest-varying) dimension, so a
// PyTorch shape [out, in] is stored as ne = {in, out}.
//
// mclip writes general.alignment = 64 so every tensor suits 512-bit vector loads when mapped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"

namespace mclip {

class MappedFile;

enum class GgufType : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
    string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

// The ggml tensor types mclip reads and writes. Q8_0 stores blocks of 32 values along ne[0]:
// a float16 scale d followed by 32 int8 q, value = d * q.
enum class GgmlType : uint32_t { f32 = 0, f16 = 1, q8_0 = 8, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30 };

const char* to_string(GgmlType type);
// Bytes used by `elements` values of `type` (elements must be a multiple of the block size).
uint64_t ggml_type_bytes(GgmlType type, uint64_t elements);
constexpr int kQ8BlockSize = 32;

struct GgufValue {
    GgufType type = GgufType::u32;
    GgufType array_type = GgufType::u32;  // element type when type == array
    nlohmann::json value;                  // numbers, bool, string or array of them
};

struct GgufTensorInfo {
    std::string name;
    Shape shape;  // PyTorch order (outermost first), i.e. ne reversed
    GgmlType type = GgmlType::f32;
    uint64_t offset = 0;  // from the start of the data section
    uint64_t bytes = 0;
};

class GgufFile {
public:
    // Maps the file and validates its structure; errors name the file and what is wrong
    // (bad magic, unsupported version, truncated header, a tensor past the end of the file).
    static GgufFile open(const std::filesystem::path& path);

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t file_size() const;
    uint32_t alignment() const { return alignment_; }

    const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
    bool has(const std::string& key) const { return metadata_.count(key) != 0; }
    // Typed accessors; they throw Error(invalid_input) naming the key when it is missing or of
    // another type. The _or variants return the fallback when the key is missing.
    std::string get_string(const std::string& key) const;
    int64_t get_int(const std::string& key) const;
    double get_float(const std::string& key) const;
    std::vector<std::string> get_string_array(const std::string& key) const;
    std::vector<int64_t> get_int_array(const std::string& key) const;
    std::vector<double> get_float_array(const std::string& key) const;
    std::string get_string_or(const std::string& key, const std::string& fallback) const;

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(const std::string& name) const;
    // The tensor as float32: a view into the mapping for f32 data, a converted copy otherwise.
    Tensor tensor_f32(const std::string& name) const;
    // Raw bytes of a tensor inside the mapping.
    const std::byte* tensor_data(const GgufTensorInfo& info) const;

private:
    std::string path_;
    std::shared_ptr<const MappedFile> file_;
    uint32_t version_ = 0;
    uint32_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::map<std::string, GgufValue> metadata_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t> tensor_index_;
};

// Builds a GGUF file in memory order and writes it atomically. Metadata keys keep insertion order.
class GgufWriter {
public:
    GgufWriter();
    void set(const std::string& key, GgufValue value);
    void set_string(const std::string& key, const std::string& value);
    void set_u32(const std::string& key, uint32_t value);
    void set_i32(const std::string& key, int32_t value);
    void set_f32(const std::string& key, float value);
    void set_bool(const std::string& key, bool value);
    void set_string_array(const std::string& key, const std::vector<std::string>& values);
    void set_f32_array(const std::string& key, const std::vector<float>& values);
    void set_i32_array(const std::string& key, const std::vector<int32_t>& values);

    // A float32 tensor stored as `type` (f32, f16, bf16 or q8_0; q8_0 needs the innermost
    // dimension to be a multiple of 32).
    void add_tensor(const std::string& name, const Tensor& tensor, GgmlType type = GgmlType::f32);

    void write(const std::filesystem::path& path) const;
    // SHA-256 over every metadata entry and tensor (names, shapes, types and data) added so far:
    // a content identity that survives copies and renames, stored by model files so that caches
    // can key on it without rehashing hundreds of megabytes.
    std::string content_sha256() const;

private:
    std::vector<std::pair<std::string, GgufValue>> metadata_;
    struct PendingTensor {
        GgufTensorInfo info;
        std::vector<std::byte> data;
    };
    std::vector<PendingTensor> tensors_;
    uint32_t alignment_ = 64;
};

// Quantizes float32 values (count a multiple of 32) to Q8_0 blocks, and back.
std::vector<std::byte> quantize_q8_0(const float* values, uint64_t count);
void dequantize_q8_0(const std::byte* blocks, uint64_t count, float* out);

}  // namespace mclip
