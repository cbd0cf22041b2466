#include "io/npy.h"

#include <cctype>
#include <cstring>

#include "common/error.h"
#include "mclip/atomic_file.h"
#include "io/mapped_file.h"

namespace mclip {
namespace {

struct NpyType {
    const char* descr;
    DType dtype;
};

// '<' is little-endian, '|' means byte order does not apply (one-byte types).
constexpr NpyType kTypes[] = {
    {"<f4", DType::f32}, {"<f2", DType::f16}, {"<f8", DType::f64}, {"|i1", DType::i8},
    {"|u1", DType::u8},  {"<i2", DType::i16}, {"<i4", DType::i32}, {"<i8", DType::i64},
    {"|b1", DType::boolean},
};

// numpy's own limit on dimensions (NPY_MAXDIMS in numpy 2); each one costs a parser 8 bytes.
constexpr size_t kMaxRank = 64;

// A small parser for the header dict numpy writes. It accepts the keys in any order and both
// quote styles, and nothing beyond what numpy's own header writer produces.
class HeaderParser {
public:
    HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

    void parse(std::string& descr, bool& fortran_order, Shape& shape) {
        bool have_descr = false, have_order = false, have_shape = false;
        expect('{');
        while (true) {
            skip_space();
            if (peek() == '}') break;
            const std::string key = parse_string();
            expect(':');
            skip_space();
            if (key == "descr") {
                if (peek() != '\'' && peek() != '"') fail("descr is not a simple dtype string (structured arrays are not supported)");
                descr = parse_string();
                have_descr = true;
            } else if (key == "fortran_order") {
                fortran_order = parse_bool();
                have_order = true;
            } else if (key == "shape") {
                shape = parse_shape();
                have_shape = true;
            } else {
                fail("unexpected header key '" + key + "'");
            }
            skip_space();
            if (peek() == ',') ++pos_;
        }
        if (!have_descr || !have_order || !have_shape) fail("header lacks descr, fortran_order or shape");
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw Error(ErrorCode::invalid_input, name_ + ": malformed .npy header: " + why);
    }
    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
    void skip_space() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    void expect(char c) {
        skip_space();
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    std::string parse_string() {
        skip_space();
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail("expected a string");
        const size_t end = text_.find(quote, pos_ + 1);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
        pos_ = end + 1;
        return s;
    }
    bool parse_bool() {
        if (text_.substr(pos_, 4) == "True") { pos_ += 4; return true; }
        if (text_.substr(pos_, 5) == "False") { pos_ += 5; return false; }
        fail("fortran_order is not True or False");
    }
    Shape parse_shape() {
        expect('(');
        Shape shape;
        while (true) {
            skip_space();
            if (peek() == ')') { ++pos_; break; }
            if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape holds a non-integer");
            int64_t v = 0;
            while (std::isdigit(static_cast<unsigned char>(peek()))) {
                v = v * 10 + (text_[pos_++] - '0');
                if (v > (int64_t{1} << 40)) fail("dimension too large");
            }
            // numpy may write 3L on Python 2; the suffix carries no meaning.
            if (peek() == 'L') ++pos_;
            if (shape.size() == kMaxRank) fail("more than " + std::to_string(kMaxRank) + " dimensions");
            shape.push_back(v);
            skip_space();
            if (peek() == ',') ++pos_;
        }
        // The element count must not overflow when the data size is computed from it.
        int64_t elements = 1;
        for (int64_t d : shape) {
            if (d && elements > (int64_t{1} << 40) / d) fail("shape is implausibly large");
            elements *= d;
        }
        return shape;
    }

    std::string_view text_;
    std::string name_;
    size_t pos_ = 0;
};

}  // namespace

Tensor parse_npy(std::span<const std::byte> bytes, const std::string& name) {
    static const char magic[] = "\x93NUMPY";
    if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0) {
        throw Error(ErrorCode::invalid_input, name + ": not a .npy file (bad magic)");
    }
    const int major = static_cast<uint8_t>(bytes[6]);
    size_t header_length, header_start;
    if (major == 1) {
        header_length = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8;
        header_start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw Error(ErrorCode::invalid_input, name + ": truncated .npy header");
        header_length = 0;
        for (int i = 3; i >= 0; --i) header_length = header_length << 8 | static_cast<uint8_t>(bytes[8 + i]);
        header_start = 12;
    } else {
        throw Error(ErrorCode::unsupported, name + ": unsupported .npy version " + std::to_string(major));
    }
    if (header_start + header_length > bytes.size()) throw Error(ErrorCode::invalid_input, name + ": truncated .npy header");
    std::string descr;
    bool fortran_order = false;
    Shape shape;
    HeaderParser(std::string_view(reinterpret_cast<const char*>(bytes.data() + header_start), header_length), name)
        .parse(descr, fortran_order, shape);
    if (fortran_order) throw Error(ErrorCode::unsupported, name + ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
    // '=' (native) means little-endian on every machine mclip runs on.
    if (!descr.empty() && descr[0] == '=') descr[0] = '<';
    const NpyType* type = nullptr;
    for (const auto& t : kTypes) {
        if (descr == t.descr) type = &t;
    }
    if (!type) throw Error(ErrorCode::unsupported, name + ": unsupported .npy dtype '" + descr + "' (expected e.g. <f4, <i4 or <i8, little-endian)");
    const size_t data_start = header_start + header_length;
    const uint64_t needed = static_cast<uint64_t>(shape_elements(shape)) * dtype_size(type->dtype);
    if (bytes.size() - data_start < needed) {
        throw Error(ErrorCode::invalid_input, name + ": truncated .npy data (" + std::to_string(bytes.size() - data_start) +
                                                  " bytes for shape " + shape_to_string(shape) + ", " + std::to_string(needed) + " needed)");
    }
    Tensor tensor = Tensor::zeros(type->dtype, shape);
    std::memcpy(tensor.data(), bytes.data() + data_start, needed);
    return tensor;
}

Tensor read_npy(const std::filesystem::path& path) {
    auto file = MappedFile::open(path);
    return parse_npy(file->bytes(), path.string());
}

void write_npy(const std::filesystem::path& path, const Tensor& tensor) {
    const NpyType* type = nullptr;
    for (const auto& t : kTypes) {
        if (t.dtype == tensor.dtype()) type = &t;
    }
    if (!type) throw Error(ErrorCode::unsupported, std::string("cannot write dtype ") + to_string(tensor.dtype()) + " to .npy");
    // Python tuple syntax: (), (3,), (3, 4)
    std::string shape = "(";
    for (size_t i = 0; i < tensor.rank(); ++i) {
        if (i) shape += ", ";
        shape += std::to_string(tensor.dim(i));
    }
    if (tensor.rank() == 1) shape += ",";
    shape += ")";
    std::string header = std::string("{'descr': '") + type->descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    const size_t unpadded = 10 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    AtomicFile out(path);
    out.write("\x93NUMPY\x01\x00", 8);
    const uint8_t length[2] = {static_cast<uint8_t>(header.size() & 0xff), static_cast<uint8_t>(header.size() >> 8)};
    out.write(length, 2);
    out.write(header);
    out.write(tensor.data(), tensor.bytes());
    out.commit();
}

}  // namespace mclip
