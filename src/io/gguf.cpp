#include "io/gguf.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "mclip/atomic_file.h"
#include "io/mapped_file.h"
#include "io/sha256.h"

namespace mclip {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kMaxStringBytes = 1u << 30;
constexpr uint64_t kMaxArrayElements = 1u << 28;
constexpr int kMaxDims = 8;

// Bounds-checked little-endian cursor over the mapped header.
class Reader {
public:
    Reader(const std::byte* data, size_t size, const std::string& name) : data_(data), size_(size), name_(name) {}

    template <typename T>
    T read() {
        need(sizeof(T));
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string read_string() {
        const uint64_t length = read<uint64_t>();
        if (length > kMaxStringBytes) fail("string length " + std::to_string(length) + " is implausible");
        need(length);
        std::string s(reinterpret_cast<const char*>(data_ + pos_), length);
        pos_ += length;
        return s;
    }
    nlohmann::json read_scalar(GgufType type) {
        switch (type) {
            case GgufType::u8: return read<uint8_t>();
            case GgufType::i8: return read<int8_t>();
            case GgufType::u16: return read<uint16_t>();
            case GgufType::i16: return read<int16_t>();
            case GgufType::u32: return read<uint32_t>();
            case GgufType::i32: return read<int32_t>();
            case GgufType::f32: return read<float>();
            case GgufType::boolean: return read<uint8_t>() != 0;
            case GgufType::string: return read_string();
            case GgufType::u64: return read<uint64_t>();
            case GgufType::i64: return read<int64_t>();
            case GgufType::f64: return read<double>();
            case GgufType::array: break;
        }
        fail("unknown value type " + std::to_string(static_cast<uint32_t>(type)));
    }
    size_t position() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }
    [[noreturn]] void fail(const std::string& why) const {
        throw Error(ErrorCode::invalid_input, name_ + ": invalid GGUF file: " + why);
    }

private:
    void need(uint64_t n) const {
        if (n > size_ - pos_) fail("truncated (the header runs past the end of the file)");
    }
    const std::byte* data_;
    size_t size_;
    size_t pos_ = 0;
    std::string name_;
};

void put_bytes(std::vector<std::byte>& out, const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
}

template <typename T>
void put(std::vector<std::byte>& out, T v) {
    put_bytes(out, &v, sizeof v);
}

void put_string(std::vector<std::byte>& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    put_bytes(out, s.data(), s.size());
}

void put_scalar(std::vector<std::byte>& out, GgufType type, const nlohmann::json& v) {
    switch (type) {
        case GgufType::u8: put<uint8_t>(out, v.get<uint8_t>()); return;
        case GgufType::i8: put<int8_t>(out, v.get<int8_t>()); return;
        case GgufType::u16: put<uint16_t>(out, v.get<uint16_t>()); return;
        case GgufType::i16: put<int16_t>(out, v.get<int16_t>()); return;
        case GgufType::u32: put<uint32_t>(out, v.get<uint32_t>()); return;
        case GgufType::i32: put<int32_t>(out, v.get<int32_t>()); return;
        case GgufType::f32: put<float>(out, v.get<float>()); return;
        case GgufType::boolean: put<uint8_t>(out, v.get<bool>() ? 1 : 0); return;
        case GgufType::string: put_string(out, v.get<std::string>()); return;
        case GgufType::u64: put<uint64_t>(out, v.get<uint64_t>()); return;
        case GgufType::i64: put<int64_t>(out, v.get<int64_t>()); return;
        case GgufType::f64: put<double>(out, v.get<double>()); return;
        case GgufType::array: break;
    }
    throw Error(ErrorCode::internal, "GGUF writer: nested arrays are not supported");
}

bool is_known_ggml_type(uint32_t t) {
    switch (static_cast<GgmlType>(t)) {
        case GgmlType::f32: case GgmlType::f16: case GgmlType::q8_0: case GgmlType::i8: case GgmlType::i16:
        case GgmlType::i32: case GgmlType::i64: case GgmlType::f64: case GgmlType::bf16: return true;
    }
    return false;
}

}  // namespace

const char* to_string(GgmlType type) {
    switch (type) {
        case GgmlType::f32: return "F32";
        case GgmlType::f16: return "F16";
        case GgmlType::q8_0: return "Q8_0";
        case GgmlType::i8: return "I8";
        case GgmlType::i16: return "I16";
        case GgmlType::i32: return "I32";
        case GgmlType::i64: return "I64";
        case GgmlType::f64: return "F64";
        case GgmlType::bf16: return "BF16";
    }
    return "?";
}

uint64_t ggml_type_bytes(GgmlType type, uint64_t elements) {
    switch (type) {
        case GgmlType::f32: case GgmlType::i32: return elements * 4;
        case GgmlType::f16: case GgmlType::bf16: case GgmlType::i16: return elements * 2;
        case GgmlType::i8: return elements;
        case GgmlType::i64: case GgmlType::f64: return elements * 8;
        case GgmlType::q8_0: return elements / kQ8BlockSize * (2 + kQ8BlockSize);
    }
    return 0;
}

std::vector<std::byte> quantize_q8_0(const float* values, uint64_t count) {
    if (count % kQ8BlockSize) throw Error(ErrorCode::internal, "Q8_0 needs a multiple of 32 values");
    std::vector<std::byte> out(ggml_type_bytes(GgmlType::q8_0, count));
    std::byte* block = out.data();
    for (uint64_t b = 0; b < count / kQ8BlockSize; ++b, block += 2 + kQ8BlockSize) {
        const float* x = values + b * kQ8BlockSize;
        float amax = 0;
        for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float inverse = d != 0 ? 1.0f / d : 0.0f;
        const uint16_t d16 = f32_to_f16(d);
        std::memcpy(block, &d16, 2);
        for (int i = 0; i < kQ8BlockSize; ++i) {
            block[2 + i] = static_cast<std::byte>(static_cast<int8_t>(std::lround(x[i] * inverse)));
        }
    }
    return out;
}

void dequantize_q8_0(const std::byte* blocks, uint64_t count, float* out) {
    for (uint64_t b = 0; b < count / kQ8BlockSize; ++b) {
        const std::byte* block = blocks + b * (2 + kQ8BlockSize);
        uint16_t d16;
        std::memcpy(&d16, block, 2);
        const float d = f16_to_f32(d16);
        for (int i = 0; i < kQ8BlockSize; ++i) out[b * kQ8BlockSize + i] = d * static_cast<int8_t>(block[2 + i]);
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

GgufFile GgufFile::open(const std::filesystem::path& path) {
    GgufFile g;
    g.path_ = path.string();
    g.file_ = MappedFile::open(path);
    Reader r(g.file_->data(), g.file_->size(), g.path_);
    if (g.file_->size() < 24) r.fail("too short (" + std::to_string(g.file_->size()) + " bytes)");
    if (r.read<uint32_t>() != kMagic) r.fail("bad magic (not a GGUF model file)");
    g.version_ = r.read<uint32_t>();
    if (g.version_ < 2 || g.version_ > 3) r.fail("unsupported version " + std::to_string(g.version_));
    const uint64_t tensor_count = r.read<uint64_t>();
    const uint64_t kv_count = r.read<uint64_t>();
    if (tensor_count > kMaxArrayElements || kv_count > kMaxArrayElements) r.fail("implausible tensor or key count");

    for (uint64_t i = 0; i < kv_count; ++i) {
        std::string key = r.read_string();
        GgufValue value;
        value.type = static_cast<GgufType>(r.read<uint32_t>());
        if (value.type == GgufType::array) {
            value.array_type = static_cast<GgufType>(r.read<uint32_t>());
            const uint64_t n = r.read<uint64_t>();
            // Every element takes at least one byte, so a count beyond the remaining bytes is
            // corrupt; checking first keeps it from sizing an allocation.
            if (n > kMaxArrayElements || n > r.remaining()) r.fail("array '" + key + "' is implausibly long (truncated?)");
            if (value.array_type == GgufType::array) r.fail("nested arrays are not supported ('" + key + "')");
            if (static_cast<uint32_t>(value.array_type) > static_cast<uint32_t>(GgufType::f64)) {
                r.fail("array '" + key + "' has unknown element type " + std::to_string(static_cast<uint32_t>(value.array_type)));
            }
            value.value = nlohmann::json::array();
            auto& array = value.value.get_ref<nlohmann::json::array_t&>();
            array.reserve(n);
            for (uint64_t j = 0; j < n; ++j) array.push_back(r.read_scalar(value.array_type));
        } else {
            value.value = r.read_scalar(value.type);
        }
        g.metadata_[key] = std::move(value);
    }
    if (auto it = g.metadata_.find("general.alignment"); it != g.metadata_.end()) {
        const int64_t a = it->second.value.is_number_integer() ? it->second.value.get<int64_t>() : 0;
        // The format stores it as a uint32; larger values would truncate to 0 below.
        if (a <= 0 || a > (int64_t{1} << 30) || (a & (a - 1)) != 0) r.fail("general.alignment must be a power of two up to 2^30");
        g.alignment_ = static_cast<uint32_t>(a);
    }

    for (uint64_t i = 0; i < tensor_count; ++i) {
        GgufTensorInfo info;
        info.name = r.read_string();
        const uint32_t n_dims = r.read<uint32_t>();
        if (n_dims > kMaxDims) r.fail("tensor '" + info.name + "' has " + std::to_string(n_dims) + " dimensions");
        std::vector<uint64_t> ne(n_dims);
        uint64_t elements = 1;
        for (auto& d : ne) {
            d = r.read<uint64_t>();
            if (d > (uint64_t{1} << 40) || (d && elements > (uint64_t{1} << 40) / d)) r.fail("tensor '" + info.name + "' is implausibly large");
            elements *= d;
        }
        info.shape.assign(ne.rbegin(), ne.rend());
        const uint32_t type = r.read<uint32_t>();
        if (!is_known_ggml_type(type)) r.fail("tensor '" + info.name + "' has unsupported ggml type " + std::to_string(type));
        info.type = static_cast<GgmlType>(type);
        if (info.type == GgmlType::q8_0 && (ne.empty() || ne[0] % kQ8BlockSize)) r.fail("Q8_0 tensor '" + info.name + "' rows are not a multiple of 32");
        info.offset = r.read<uint64_t>();
        info.bytes = ggml_type_bytes(info.type, elements);
        if (g.tensor_index_.count(info.name)) r.fail("duplicate tensor '" + info.name + "'");
        g.tensor_index_[info.name] = g.tensors_.size();
        g.tensors_.push_back(std::move(info));
    }
    g.data_offset_ = (r.position() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
    for (const auto& t : g.tensors_) {
        if (t.offset % g.alignment_) r.fail("tensor '" + t.name + "' is not aligned");
        // Written so that no sum can wrap around: offsets come from the file and may be anything.
        const uint64_t size = g.file_->size();
        if (g.data_offset_ > size || t.offset > size - g.data_offset_ || t.bytes > size - g.data_offset_ - t.offset) {
            r.fail("tensor '" + t.name + "' lies past the end of the file (truncated?)");
        }
    }
    return g;
}

uint64_t GgufFile::file_size() const { return file_->size(); }

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const std::byte* GgufFile::tensor_data(const GgufTensorInfo& info) const {
    return file_->data() + data_offset_ + info.offset;
}

Tensor GgufFile::tensor_f32(const std::string& name) const {
    const GgufTensorInfo* info = find_tensor(name);
    if (!info) throw Error(ErrorCode::invalid_input, path_ + ": missing tensor '" + name + "'");
    const std::byte* data = tensor_data(*info);
    switch (info->type) {
        case GgmlType::f32:
            return Tensor(DType::f32, info->shape, const_cast<std::byte*>(data), file_);
        case GgmlType::q8_0: {
            Tensor out = Tensor::zeros_f32(info->shape);
            dequantize_q8_0(data, static_cast<uint64_t>(out.elements()), out.f32());
            return out;
        }
        case GgmlType::f16: return Tensor(DType::f16, info->shape, const_cast<std::byte*>(data), file_).to_f32();
        case GgmlType::bf16: return Tensor(DType::bf16, info->shape, const_cast<std::byte*>(data), file_).to_f32();
        case GgmlType::f64: return Tensor(DType::f64, info->shape, const_cast<std::byte*>(data), file_).to_f32();
        case GgmlType::i8: return Tensor(DType::i8, info->shape, const_cast<std::byte*>(data), file_).to_f32();
        case GgmlType::i16: return Tensor(DType::i16, info->shape, const_cast<std::byte*>(data), file_).to_f32();
        case GgmlType::i32: return Tensor(DType::i32, info->shape, const_cast<std::byte*>(data), file_).to_f32();
        case GgmlType::i64: return Tensor(DType::i64, info->shape, const_cast<std::byte*>(data), file_).to_f32();
    }
    throw Error(ErrorCode::internal, "unhandled ggml type");
}

namespace {

const GgufValue& lookup(const std::map<std::string, GgufValue>& metadata, const std::string& path, const std::string& key) {
    auto it = metadata.find(key);
    if (it == metadata.end()) throw Error(ErrorCode::invalid_input, path + ": missing metadata key '" + key + "'");
    return it->second;
}

[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const char* expected) {
    throw Error(ErrorCode::invalid_input, path + ": metadata key '" + key + "' is not " + expected);
}

}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
    const auto& v = lookup(metadata_, path_, key);
    if (v.type != GgufType::string) wrong_type(path_, key, "a string");
    return v.value.get<std::string>();
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
}

int64_t GgufFile::get_int(const std::string& key) const {
    const auto& v = lookup(metadata_, path_, key);
    if (!v.value.is_number_integer()) wrong_type(path_, key, "an integer");
    return v.value.get<int64_t>();
}

double GgufFile::get_float(const std::string& key) const {
    const auto& v = lookup(metadata_, path_, key);
    if (!v.value.is_number()) wrong_type(path_, key, "a number");
    return v.value.get<double>();
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
    const auto& v = lookup(metadata_, path_, key);
    if (v.type != GgufType::array || v.array_type != GgufType::string) wrong_type(path_, key, "an array of strings");
    return v.value.get<std::vector<std::string>>();
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
    const auto& v = lookup(metadata_, path_, key);
    if (v.type != GgufType::array) wrong_type(path_, key, "an array of integers");
    std::vector<int64_t> values;
    for (const nlohmann::json& e : v.value) {
        // A u64 beyond int64's range would wrap: refused like any other non-integer.
        if (!e.is_number_integer() || (e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
            wrong_type(path_, key, "an array of integers");
        }
        values.push_back(e.get<int64_t>());
    }
    return values;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
    const auto& v = lookup(metadata_, path_, key);
    if (v.type != GgufType::array || (v.array_type != GgufType::f32 && v.array_type != GgufType::f64)) {
        wrong_type(path_, key, "an array of floats");
    }
    return v.value.get<std::vector<double>>();
}

// ---------------------------------------------------------------------------------------------
// Writing

GgufWriter::GgufWriter() { set_u32("general.alignment", alignment_); }

void GgufWriter::set(const std::string& key, GgufValue value) {
    for (auto& [k, v] : metadata_) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::set_string(const std::string& key, const std::string& value) { set(key, {GgufType::string, GgufType::u32, value}); }
void GgufWriter::set_u32(const std::string& key, uint32_t value) { set(key, {GgufType::u32, GgufType::u32, value}); }
void GgufWriter::set_i32(const std::string& key, int32_t value) { set(key, {GgufType::i32, GgufType::u32, value}); }
void GgufWriter::set_f32(const std::string& key, float value) { set(key, {GgufType::f32, GgufType::u32, value}); }
void GgufWriter::set_bool(const std::string& key, bool value) { set(key, {GgufType::boolean, GgufType::u32, value}); }
void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& values) {
    set(key, {GgufType::array, GgufType::string, values});
}
void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& values) {
    set(key, {GgufType::array, GgufType::f32, values});
}
void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& values) {
    set(key, {GgufType::array, GgufType::i32, values});
}

void GgufWriter::add_tensor(const std::string& name, const Tensor& tensor, GgmlType type) {
    for (const auto& t : tensors_) {
        if (t.info.name == name) throw Error(ErrorCode::internal, "GGUF writer: duplicate tensor '" + name + "'");
    }
    PendingTensor pending;
    pending.info.name = name;
    pending.info.shape = tensor.shape();
    pending.info.type = type;
    const uint64_t n = static_cast<uint64_t>(tensor.elements());
    if (type == GgmlType::i32 && tensor.dtype() == DType::i32) {
        pending.data.resize(tensor.bytes());
        std::memcpy(pending.data.data(), tensor.data(), tensor.bytes());
    } else {
        const Tensor f = tensor.dtype() == DType::f32 ? tensor : tensor.to_f32();
        const float* x = f.f32();
        switch (type) {
            case GgmlType::f32:
                pending.data.resize(n * 4);
                std::memcpy(pending.data.data(), x, n * 4);
                break;
            case GgmlType::f16:
            case GgmlType::bf16:
                pending.data.resize(n * 2);
                for (uint64_t i = 0; i < n; ++i) {
                    const uint16_t h = type == GgmlType::f16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
                    std::memcpy(pending.data.data() + 2 * i, &h, 2);
                }
                break;
            case GgmlType::q8_0:
                if (tensor.rank() == 0 || tensor.shape().back() % kQ8BlockSize) {
                    throw Error(ErrorCode::internal, "Q8_0 tensor '" + name + "' needs rows that are a multiple of 32");
                }
                pending.data = quantize_q8_0(x, n);
                break;
            default:
                throw Error(ErrorCode::internal, std::string("GGUF writer cannot store float data as ") + to_string(type));
        }
    }
    pending.info.bytes = pending.data.size();
    tensors_.push_back(std::move(pending));
}

std::string GgufWriter::content_sha256() const {
    Sha256 hash;
    std::vector<std::byte> bytes;
    for (const auto& [key, v] : metadata_) {
        bytes.clear();
        put_string(bytes, key);
        put<uint32_t>(bytes, static_cast<uint32_t>(v.type));
        if (v.type == GgufType::array) {
            put<uint32_t>(bytes, static_cast<uint32_t>(v.array_type));
            for (const auto& element : v.value) put_scalar(bytes, v.array_type, element);
        } else {
            put_scalar(bytes, v.type, v.value);
        }
        hash.update(bytes.data(), bytes.size());
    }
    for (const auto& t : tensors_) {
        bytes.clear();
        put_string(bytes, t.info.name);
        for (int64_t d : t.info.shape) put<int64_t>(bytes, d);
        put<uint32_t>(bytes, static_cast<uint32_t>(t.info.type));
        hash.update(bytes.data(), bytes.size());
        hash.update(t.data.data(), t.data.size());
    }
    return hash.hex_digest();
}

void GgufWriter::write(const std::filesystem::path& path) const {
    std::vector<std::byte> header;
    put<uint32_t>(header, kMagic);
    put<uint32_t>(header, 3);
    put<uint64_t>(header, tensors_.size());
    put<uint64_t>(header, metadata_.size());
    for (const auto& [key, v] : metadata_) {
        put_string(header, key);
        put<uint32_t>(header, static_cast<uint32_t>(v.type));
        if (v.type == GgufType::array) {
            put<uint32_t>(header, static_cast<uint32_t>(v.array_type));
            put<uint64_t>(header, v.value.size());
            for (const auto& element : v.value) put_scalar(header, v.array_type, element);
        } else {
            put_scalar(header, v.type, v.value);
        }
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        put_string(header, t.info.name);
        put<uint32_t>(header, static_cast<uint32_t>(t.info.shape.size()));
        for (auto it = t.info.shape.rbegin(); it != t.info.shape.rend(); ++it) put<uint64_t>(header, static_cast<uint64_t>(*it));
        put<uint32_t>(header, static_cast<uint32_t>(t.info.type));
        put<uint64_t>(header, offset);
        offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
    }
    AtomicFile out(path);
    out.write(header.data(), header.size());
    out.pad_to(alignment_);
    for (const auto& t : tensors_) {
        out.write(t.data.data(), t.data.size());
        out.pad_to(alignment_);
    }
    out.commit();
}

}  // namespace mclip
