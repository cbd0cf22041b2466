#include "coreml/milblob.h"

#include <cstring>
#include <fstream>

#include "common/error.h"

namespace mclip::coreml {

namespace {

constexpr uint32_t kSentinel = 0xDEADBEEF;
constexpr uint64_t kAlign = 64;
constexpr uint64_t kRecordBytes = 64;
constexpr uint64_t kHeaderBytes = 64;

template <typename T>
T load(const uint8_t* p) {
    T value;
    std::memcpy(&value, p, sizeof value);  // the format is little-endian, like every host mclip runs on
    return value;
}

template <typename T>
void store(std::string& out, size_t at, T value) {
    std::memcpy(out.data() + at, &value, sizeof value);
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
    throw Error(ErrorCode::invalid_input, path + ": " + what);
}

}  // namespace

const char* blob_type_name(uint32_t code) {
    switch (code) {
        case 1: return "fp16";
        case 2: return "fp32";
        case 3: return "uint8";
        case 4: return "int8";
        case 5: return "bf16";
        case 6: return "int16";
        case 7: return "uint16";
        case 14: return "int32";
        case 15: return "uint32";
        default: break;
    }
    throw Error(ErrorCode::invalid_input, "unknown MILBlob data type code " + std::to_string(code));
}

size_t blob_type_size(BlobType type) {
    switch (type) {
        case BlobType::u8:
        case BlobType::i8: return 1;
        case BlobType::f16:
        case BlobType::bf16:
        case BlobType::i16:
        case BlobType::u16: return 2;
        case BlobType::f32:
        case BlobType::i32:
        case BlobType::u32: return 4;
    }
    return 0;
}

std::shared_ptr<const BlobFile> BlobFile::open(const std::filesystem::path& path) {
    auto file = std::make_shared<BlobFile>();
    file->path_ = path.string();
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_system_error(file->path_, "cannot open the weight file");
    file->bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw_system_error(file->path_, "cannot read the weight file");
    const auto& bytes = file->bytes_;
    const uint64_t size = bytes.size();
    if (size < kHeaderBytes) bad(file->path_, "truncated: " + std::to_string(size) + " bytes, shorter than the 64-byte MILBlob header");
    const uint32_t count = load<uint32_t>(bytes.data());
    file->version_ = load<uint32_t>(bytes.data() + 4);
    if (file->version_ != 2) bad(file->path_, "MILBlob version " + std::to_string(file->version_) + " (only version 2 is supported)");
    // Each record and its data follow the previous blob's data at the next 64-aligned offset.
    uint64_t next = kHeaderBytes;
    for (uint32_t i = 0; i < count; ++i) {
        const std::string where = "blob " + std::to_string(i) + " at offset " + std::to_string(next);
        if (next + kRecordBytes > size) bad(file->path_, "truncated: " + where + " lies past the end of the file (" + std::to_string(size) + " bytes)");
        const uint8_t* meta = bytes.data() + next;
        const uint32_t sentinel = load<uint32_t>(meta);
        if (sentinel != kSentinel) {
            char text[16];
            std::snprintf(text, sizeof text, "0x%08X", sentinel);
            bad(file->path_, where + ": wrong sentinel " + text + " (expected 0xDEADBEEF)");
        }
        BlobRecord record;
        record.metadata_offset = next;
        const uint32_t code = load<uint32_t>(meta + 4);
        blob_type_name(code);
        record.type = static_cast<BlobType>(code);
        record.size = load<uint64_t>(meta + 8);
        record.data_offset = load<uint64_t>(meta + 16);
        if (record.data_offset < next + kRecordBytes || record.data_offset % kAlign != 0) {
            bad(file->path_, where + ": data offset " + std::to_string(record.data_offset) + " is not a 64-aligned offset after its record");
        }
        if (record.data_offset > size || record.size > size - record.data_offset) {
            bad(file->path_, "truncated: " + where + ": data [" + std::to_string(record.data_offset) + ", +" + std::to_string(record.size) +
                                 ") lies past the end of the file (" + std::to_string(size) + " bytes)");
        }
        if (record.size % blob_type_size(record.type) != 0) {
            bad(file->path_, where + ": size " + std::to_string(record.size) + " is not a whole number of " + blob_type_name(code) + " elements");
        }
        file->records_[next] = record;
        next = (record.data_offset + record.size + kAlign - 1) / kAlign * kAlign;
    }
    return file;
}

const BlobRecord& BlobFile::record(uint64_t offset) const {
    const auto found = records_.find(offset);
    if (found == records_.end()) {
        bad(path_, "no blob record at offset " + std::to_string(offset) + " (the file has " + std::to_string(records_.size()) + " blobs, " +
                       std::to_string(bytes_.size()) + " bytes)");
    }
    return found->second;
}

std::span<const uint8_t> BlobFile::data(const BlobRecord& record) const {
    return {bytes_.data() + record.data_offset, static_cast<size_t>(record.size)};
}

BlobWriter::BlobWriter() : bytes_(kHeaderBytes, '\0') { store<uint32_t>(bytes_, 4, 2); }

uint64_t BlobWriter::add(BlobType type, std::span<const uint8_t> data) {
    bytes_.resize((bytes_.size() + kAlign - 1) / kAlign * kAlign, '\0');
    const uint64_t record = bytes_.size();
    bytes_.resize(record + kRecordBytes, '\0');
    store<uint32_t>(bytes_, record, kSentinel);
    store<uint32_t>(bytes_, record + 4, static_cast<uint32_t>(type));
    store<uint64_t>(bytes_, record + 8, data.size());
    store<uint64_t>(bytes_, record + 16, record + kRecordBytes);
    bytes_.append(reinterpret_cast<const char*>(data.data()), data.size());
    ++count_;
    return record;
}

std::string BlobWriter::finish() const {
    std::string out = bytes_;
    store<uint32_t>(out, 0, count_);
    return out;
}

}  // namespace mclip::coreml
