// numpy .npy files: round trips, the exact bytes numpy writes, and refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "io/npy.h"
#include "io/io_test_support.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
using ::testing::HasSubstr;

namespace {

std::span<const std::byte> as_bytes(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

// A .npy version 1.0 file as numpy's format.write_array lays it out: the header dict padded with
// spaces and a newline so that magic + version + length + header is a multiple of 64 bytes.
std::string npy_v1(const std::string& dict, const std::string& data) {
    size_t header_length = dict.size() + 1;
    header_length += (64 - (10 + header_length) % 64) % 64;
    std::string file = std::string("\x93NUMPY\x01\x00", 8);
    file += static_cast<char>(header_length & 0xff);
    file += static_cast<char>(header_length >> 8);
    file += dict + std::string(header_length - dict.size() - 1, ' ') + "\n";
    return file + data;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

class NpyFiles : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-npy"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

}  // namespace

TEST_F(NpyFiles, RoundTripsAtEveryRank) {
    const std::vector<Shape> shapes = {{}, {1}, {5}, {2, 3}, {2, 1, 3, 4}, {0, 3}};
    for (DType dtype : {DType::f32, DType::i32, DType::i64, DType::f16, DType::u8}) {
        for (const Shape& shape : shapes) {
            SCOPED_TRACE(std::string(to_string(dtype)) + " " + shape_to_string(shape));
            Tensor tensor = Tensor::zeros(dtype, shape);
            auto* bytes = static_cast<uint8_t*>(tensor.data());
            for (size_t i = 0; i < tensor.bytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 + 11);
            const auto path = dir_ / "t.npy";
            write_npy(path, tensor);
            const std::string file = read_bytes(path);
            // numpy aligns the data to 64 bytes, with the header ending in a newline.
            const size_t data_start = 10 + (static_cast<uint8_t>(file[8]) | static_cast<uint8_t>(file[9]) << 8);
            EXPECT_EQ(data_start % 64, 0u);
            EXPECT_EQ(file[data_start - 1], '\n');
            EXPECT_EQ(file.size(), data_start + tensor.bytes());
            const Tensor back = read_npy(path);
            EXPECT_EQ(back.dtype(), dtype);
            EXPECT_EQ(back.shape(), shape);
            ASSERT_EQ(back.bytes(), tensor.bytes());
            EXPECT_EQ(std::memcmp(back.data(), tensor.data(), tensor.bytes()), 0);
        }
    }
}

TEST_F(NpyFiles, WritesTheBytesNumpyWrites) {
    // np.save of np.arange(6, dtype=np.float32).reshape(2, 3): 118 header bytes (0x76).
    const std::vector<float> values = {0, 1, 2, 3, 4, 5};
    const std::string numpy_file = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw(values));
    ASSERT_EQ(numpy_file.substr(0, 10), std::string("\x93NUMPY\x01\x00\x76\x00", 10));
    write_npy(dir_ / "ours.npy", Tensor::from_f32({2, 3}, values));
    EXPECT_EQ(read_bytes(dir_ / "ours.npy"), numpy_file);

    // 1-d and 0-d shapes use Python's tuple syntax: (4,) and ().
    Tensor ids = Tensor::zeros(DType::i64, {4});
    write_npy(dir_ / "ids.npy", ids);
    EXPECT_THAT(read_bytes(dir_ / "ids.npy"), HasSubstr("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }"));
    write_npy(dir_ / "scalar.npy", Tensor::zeros(DType::i32, {}));
    EXPECT_THAT(read_bytes(dir_ / "scalar.npy"), HasSubstr("'shape': (), }"));
}

TEST(Npy, ReadsFilesWrittenByNumpy) {
    // Recent numpy adds spare spaces after the dict so the shape can grow in place; older numpy
    // and Python 2 wrote 'L' suffixes; both are valid headers.
    const std::vector<int32_t> ints = {-1, 2, 300000, 7};
    const Tensor grown = parse_npy(as_bytes(npy_v1("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }" + std::string(20, ' '), raw(ints))), "grown.npy");
    EXPECT_EQ(grown.dtype(), DType::i32);
    EXPECT_EQ(grown.shape(), (Shape{2, 2}));
    EXPECT_EQ(static_cast<const int32_t*>(grown.data())[2], 300000);
    const Tensor python2 = parse_npy(as_bytes(npy_v1("{'descr': '<i4', 'fortran_order': False, 'shape': (4L,), }", raw(ints))), "py2.npy");
    EXPECT_EQ(python2.shape(), (Shape{4}));
    const Tensor bools = parse_npy(as_bytes(npy_v1("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\x01\x00\x01", 3))), "b.npy");
    EXPECT_EQ(bools.dtype(), DType::boolean);
}

TEST(Npy, ReadsVersion2Headers) {
    // Version 2.0 differs only in a 4-byte header length (numpy uses it for headers over 64 KiB).
    const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
    size_t header_length = dict.size() + 1;
    header_length += (64 - (12 + header_length) % 64) % 64;
    std::string file = std::string("\x93NUMPY\x02\x00", 8);
    for (int i = 0; i < 4; ++i) file += static_cast<char>(header_length >> (8 * i) & 0xff);
    file += dict + std::string(header_length - dict.size() - 1, ' ') + "\n";
    EXPECT_EQ(file.size() % 64, 0u);
    file += raw(std::vector<double>{0.25, -8});
    const Tensor t = parse_npy(as_bytes(file), "v2.npy");
    EXPECT_EQ(t.dtype(), DType::f64);
    EXPECT_EQ(static_cast<const double*>(t.data())[1], -8.0);
}

TEST(Npy, RefusesWhatItCannotRead) {
    const std::string data = raw(std::vector<float>{1, 2, 3, 4});
    struct Case {
        std::string file;
        std::string message;
    };
    const std::vector<Case> cases = {
        {npy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", data), "unsupported .npy dtype '>f4'"},
        {npy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data), "Fortran-order arrays are not supported"},
        {npy_v1("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (4,), }", data), "structured arrays are not supported"},
        {npy_v1("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", data), "unsupported .npy dtype '<c8'"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", data), "truncated .npy data (16 bytes for shape [5], 20 needed)"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, }", data), "header lacks descr, fortran_order or shape"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", data), "shape holds a non-integer"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'extra': 1, }", data), "unexpected header key 'extra'"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)", data), "expected a string"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", data), "implausibly large"},
        {npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", data).substr(0, 40), "truncated .npy header"},
        {std::string("\x93NUMPX\x01\x00", 8) + "xxxxxxxx", "not a .npy file (bad magic)"},
        {std::string("\x93NUMPY\x04\x00", 8) + "xxxxxxxx", "unsupported .npy version 4"},
        {std::string("\x93NUMPY\x02\x00\xff\xff", 10), "truncated .npy header"},
        {"", "not a .npy file"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.message);
        const std::string message = error_of([&] { parse_npy(as_bytes(c.file), "case.npy"); });
        EXPECT_THAT(message, HasSubstr("case.npy: "));
        EXPECT_THAT(message, HasSubstr(c.message));
    }
}

TEST_F(NpyFiles, EveryTruncationIsRefused) {
    Tensor tensor = Tensor::from_f32({3, 5}, std::vector<float>(15, 1.25f));
    write_npy(dir_ / "t.npy", tensor);
    const std::string file = read_bytes(dir_ / "t.npy");
    for (size_t length = 0; length < file.size(); ++length) {
        EXPECT_THROW(parse_npy(as_bytes(file.substr(0, length)), "cut.npy"), Error) << length;
    }
}

TEST(Npy, MissingFileNamesIt) {
    EXPECT_THAT(error_of([] { read_npy("/nonexistent/x.npy"); }), HasSubstr("/nonexistent/x.npy"));
}
