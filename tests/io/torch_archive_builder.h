// Test helpers that write what torch.save writes, byte for byte where it matters: pickles built
// opcode by opcode and zip archives of stored records, so the checkpoint reader can be fed
// well-formed variations (other protocols, dtypes, strides, byte orders) and precise defects.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mclip::testing {

// Emits pickle opcodes (names as in Python's pickletools) into a byte string.
class PickleWriter {
public:
    PickleWriter& proto(int version);
    PickleWriter& raw(std::string_view bytes);
    PickleWriter& op(uint8_t opcode);
    PickleWriter& mark() { return op('('); }
    PickleWriter& tuple() { return op('t'); }
    PickleWriter& empty_tuple() { return op(')'); }
    PickleWriter& empty_dict() { return op('}'); }
    PickleWriter& empty_list() { return op(']'); }
    PickleWriter& setitem() { return op('s'); }
    PickleWriter& setitems() { return op('u'); }
    PickleWriter& reduce() { return op('R'); }
    PickleWriter& build() { return op('b'); }
    PickleWriter& binpersid() { return op('Q'); }
    PickleWriter& none() { return op('N'); }
    PickleWriter& boolean(bool value) { return op(value ? 0x88 : 0x89); }
    PickleWriter& stop() { return op('.'); }
    PickleWriter& binput(uint8_t index);
    PickleWriter& binget(uint8_t index);
    // The smallest integer opcode, as Python's pickler chooses: BININT1, BININT2, BININT or LONG1.
    PickleWriter& integer(int64_t value);
    PickleWriter& text(std::string_view value);        // BINUNICODE
    PickleWriter& short_text(std::string_view value);  // SHORT_BINUNICODE (protocol 4)
    PickleWriter& global(std::string_view module, std::string_view name);        // GLOBAL
    PickleWriter& stack_global(std::string_view module, std::string_view name);  // STACK_GLOBAL
    PickleWriter& int_tuple(const std::vector<int64_t>& values);                 // MARK ints TUPLE
    // collections.OrderedDict() as protocol 2 writes it.
    PickleWriter& ordered_dict();
    // The persistent id ('storage', torch.<storage_type>, key, 'cpu', numel) and BINPERSID.
    PickleWriter& storage(std::string_view storage_type, std::string_view key, int64_t numel);
    // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
    PickleWriter& tensor(std::string_view storage_type, std::string_view key, int64_t numel, int64_t offset,
                         const std::vector<int64_t>& size, const std::vector<int64_t>& stride);

    const std::string& bytes() const { return bytes_; }

private:
    std::string bytes_;
};

struct ArchiveRecord {
    std::string name;
    std::string data;
};

// Writes a zip archive holding the records in order, uncompressed unless `deflate` is set.
void write_zip(const std::filesystem::path& path, const std::vector<ArchiveRecord>& records, bool deflate = false);
// Reads every record of a zip archive, in directory order.
std::vector<ArchiveRecord> read_zip(const std::filesystem::path& path);

// A torch.save-style archive "archive/": data.pkl, byteorder, data/<key> records, version.
void write_torch_archive(const std::filesystem::path& path, const std::string& pickle,
                         const std::vector<ArchiveRecord>& storages, const std::string& byteorder = "little");

// Raw little-endian bytes of a value array.
template <typename T>
std::string bytes_of(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

}  // namespace mclip::testing
