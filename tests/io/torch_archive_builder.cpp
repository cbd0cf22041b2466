#include "torch_archive_builder.h"

#include <zip.h>

#include <stdexcept>

namespace mclip::testing {

PickleWriter& PickleWriter::proto(int version) {
    op(0x80);
    bytes_ += static_cast<char>(version);
    return *this;
}

PickleWriter& PickleWriter::raw(std::string_view bytes) {
    bytes_ += bytes;
    return *this;
}

PickleWriter& PickleWriter::op(uint8_t opcode) {
    bytes_ += static_cast<char>(opcode);
    return *this;
}

PickleWriter& PickleWriter::binput(uint8_t index) {
    op('q');
    bytes_ += static_cast<char>(index);
    return *this;
}

PickleWriter& PickleWriter::binget(uint8_t index) {
    op('h');
    bytes_ += static_cast<char>(index);
    return *this;
}

PickleWriter& PickleWriter::integer(int64_t value) {
    auto little_endian = [this](uint64_t v, int n) {
        for (int i = 0; i < n; ++i) bytes_ += static_cast<char>(v >> (8 * i) & 0xff);
    };
    if (value >= 0 && value < 256) {
        op('K');
        little_endian(static_cast<uint64_t>(value), 1);
    } else if (value >= 0 && value < 65536) {
        op('M');
        little_endian(static_cast<uint64_t>(value), 2);
    } else if (value >= INT32_MIN && value <= INT32_MAX) {
        op('J');
        little_endian(static_cast<uint64_t>(value), 4);
    } else {
        op(0x8a);
        bytes_ += static_cast<char>(8);
        little_endian(static_cast<uint64_t>(value), 8);
    }
    return *this;
}

PickleWriter& PickleWriter::text(std::string_view value) {
    op('X');
    for (int i = 0; i < 4; ++i) bytes_ += static_cast<char>(value.size() >> (8 * i) & 0xff);
    bytes_ += value;
    return *this;
}

PickleWriter& PickleWriter::short_text(std::string_view value) {
    op(0x8c);
    bytes_ += static_cast<char>(value.size());
    bytes_ += value;
    return *this;
}

PickleWriter& PickleWriter::global(std::string_view module, std::string_view name) {
    op('c');
    bytes_ += std::string(module) + "\n" + std::string(name) + "\n";
    return *this;
}

PickleWriter& PickleWriter::stack_global(std::string_view module, std::string_view name) {
    short_text(module);
    short_text(name);
    return op(0x93);
}

PickleWriter& PickleWriter::int_tuple(const std::vector<int64_t>& values) {
    mark();
    for (int64_t v : values) integer(v);
    return tuple();
}

PickleWriter& PickleWriter::ordered_dict() { return global("collections", "OrderedDict").empty_tuple().reduce(); }

PickleWriter& PickleWriter::storage(std::string_view storage_type, std::string_view key, int64_t numel) {
    mark().text("storage").global("torch", storage_type).text(key).text("cpu").integer(numel).tuple();
    return binpersid();
}

PickleWriter& PickleWriter::tensor(std::string_view storage_type, std::string_view key, int64_t numel, int64_t offset,
                                   const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    storage(storage_type, key, numel);
    integer(offset).int_tuple(size).int_tuple(stride).boolean(false).ordered_dict();
    return tuple().reduce();
}

void write_zip(const std::filesystem::path& path, const std::vector<ArchiveRecord>& records, bool deflate) {
    // A fresh file rather than a replaced one: ext4 flushes files renamed over others, which
    // the robustness tests would pay thousands of times.
    std::filesystem::remove(path);
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    if (!archive) throw std::runtime_error("zip_open failed for " + path.string());
    for (const auto& record : records) {
        // libzip reads the source at zip_close, so the records must outlive the archive handle.
        zip_source_t* source = zip_source_buffer(archive, record.data.data(), record.data.size(), 0);
        const zip_int64_t index = source ? zip_file_add(archive, record.name.c_str(), source, ZIP_FL_ENC_UTF_8) : -1;
        if (index < 0) {
            if (source) zip_source_free(source);
            zip_discard(archive);
            throw std::runtime_error("zip_file_add failed for " + record.name);
        }
        zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
    if (zip_close(archive) != 0) {
        const std::string reason = zip_strerror(archive);
        zip_discard(archive);
        throw std::runtime_error("zip_close failed for " + path.string() + ": " + reason);
    }
}

std::vector<ArchiveRecord> read_zip(const std::filesystem::path& path) {
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &error);
    if (!archive) throw std::runtime_error("zip_open failed for " + path.string());
    std::vector<ArchiveRecord> records;
    for (zip_int64_t i = 0; i < zip_get_num_entries(archive, 0); ++i) {
        zip_stat_t st;
        zip_stat_index(archive, static_cast<zip_uint64_t>(i), 0, &st);
        ArchiveRecord record{st.name, std::string(st.size, '\0')};
        zip_file_t* file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
        const zip_int64_t n = file ? zip_fread(file, record.data.data(), st.size) : -1;
        if (file) zip_fclose(file);
        if (n != static_cast<zip_int64_t>(st.size)) {
            zip_discard(archive);
            throw std::runtime_error("cannot read " + record.name + " from " + path.string());
        }
        records.push_back(std::move(record));
    }
    zip_discard(archive);
    return records;
}

void write_torch_archive(const std::filesystem::path& path, const std::string& pickle,
                         const std::vector<ArchiveRecord>& storages, const std::string& byteorder) {
    std::vector<ArchiveRecord> records = {{"archive/data.pkl", pickle}, {"archive/byteorder", byteorder}};
    for (const auto& storage : storages) records.push_back({"archive/data/" + storage.name, storage.data});
    records.push_back({"archive/version", "3\n"});
    write_zip(path, records);
}

}  // namespace mclip::testing
