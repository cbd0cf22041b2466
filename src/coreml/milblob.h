// MILBlob storage (weights/weight.bin, version 2): the file Core ML ML Programs keep their large
// constants in. A 64-byte header (blob count, version) is followed by blobs, each a 64-byte
// metadata record (sentinel, data type, size, data offset) at a 64-aligned offset and its data.
// Program values refer to a blob by the offset of its metadata record.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mclip::coreml {

// Data type codes of blob metadata records.
enum class BlobType : uint32_t {
    f16 = 1,
    f32 = 2,
    u8 = 3,
    i8 = 4,
    bf16 = 5,
    i16 = 6,
    u16 = 7,
    i32 = 14,
    u32 = 15,
};

// "fp16", "uint8", ...; throws Error(invalid_input) for a code mclip does not know.
const char* blob_type_name(uint32_t code);
size_t blob_type_size(BlobType type);

struct BlobRecord {
    uint64_t metadata_offset = 0;
    BlobType type = BlobType::f32;
    uint64_t data_offset = 0;
    uint64_t size = 0;  // bytes
};

// A weight.bin read whole and validated: the header, and every record the header counts (sentinel,
// known type, data inside the file, records in file order without overlap). Errors name the file
// and the offset.
class BlobFile {
public:
    static std::shared_ptr<const BlobFile> open(const std::filesystem::path& path);

    uint32_t version() const { return version_; }
    uint32_t blob_count() const { return static_cast<uint32_t>(records_.size()); }
    uint64_t file_size() const { return bytes_.size(); }
    // The record whose metadata starts at `offset`; throws Error(invalid_input) when none does.
    const BlobRecord& record(uint64_t offset) const;
    std::span<const uint8_t> data(const BlobRecord& record) const;

private:
    std::string path_;
    std::vector<uint8_t> bytes_;
    uint32_t version_ = 0;
    std::map<uint64_t, BlobRecord> records_;
};

// Builds a weight.bin in memory: blobs are appended in order, each record 64-aligned with its data
// right after it; reserved fields are zero.
class BlobWriter {
public:
    BlobWriter();
    // Appends a blob and returns the offset of its metadata record (what a program value stores).
    uint64_t add(BlobType type, std::span<const uint8_t> data);
    // The finished file (header count filled in).
    std::string finish() const;

private:
    std::string bytes_;
    uint32_t count_ = 0;
};

}  // namespace mclip::coreml
