// safetensors: round trips of every dtype, the reference fixture files, and refusals of
// damaged or malformed files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "io/safetensors.h"
#include "io/io_test_support.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
using ::testing::HasSubstr;

namespace {

// A safetensors file from its parts: u64 little-endian header length, header, data.
std::string safetensors_file(const std::string& header, const std::string& data) {
    std::string file;
    for (int i = 0; i < 8; ++i) file += static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i) & 0xff);
    return file + header + data;
}

std::span<const std::byte> as_bytes(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

class SafetensorsFiles : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-st"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path path(const std::string& name) const { return dir_ / name; }
    std::filesystem::path dir_;
};

}  // namespace

TEST_F(SafetensorsFiles, RoundTripsEveryDtypeAndMetadata) {
    const std::vector<std::pair<DType, const char*>> dtypes = {
        {DType::f32, "F32"}, {DType::f16, "F16"}, {DType::bf16, "BF16"}, {DType::f64, "F64"}, {DType::i8, "I8"},
        {DType::u8, "U8"},   {DType::i16, "I16"}, {DType::i32, "I32"},   {DType::i64, "I64"}, {DType::boolean, "BOOL"},
    };
    TensorMap tensors;
    for (size_t k = 0; k < dtypes.size(); ++k) {
        Tensor t = Tensor::zeros(dtypes[k].first, {3, static_cast<int64_t>(k % 3 + 1)});
        auto* bytes = static_cast<uint8_t*>(t.data());
        for (size_t i = 0; i < t.bytes(); ++i) bytes[i] = static_cast<uint8_t>(dtypes[k].first == DType::boolean ? i % 2 : i * 29 + k);
        tensors[std::string("t.") + dtypes[k].second] = t;
    }
    tensors["scalar"] = Tensor::from_f32({}, std::vector<float>{2.5f});
    tensors["empty"] = Tensor::zeros_f32({0, 4});
    const std::map<std::string, std::string> metadata = {{"model", "mobileclip_s0"}, {"prompts", "[\"a cat\"]"}};
    write_safetensors(path("all.safetensors"), tensors, metadata);

    const SafetensorsFile back = read_safetensors(path("all.safetensors"));
    EXPECT_EQ(back.metadata, metadata);
    ASSERT_EQ(back.tensors.size(), tensors.size());
    for (const auto& [name, tensor] : tensors) {
        SCOPED_TRACE(name);
        const Tensor& read = back.tensors.at(name);
        EXPECT_EQ(read.dtype(), tensor.dtype());
        EXPECT_EQ(read.shape(), tensor.shape());
        ASSERT_EQ(read.bytes(), tensor.bytes());
        EXPECT_EQ(std::memcmp(read.data(), tensor.data(), tensor.bytes()), 0);
    }

    // The header is what other readers expect: dtype names, contiguous offsets, 8-byte alignment.
    const std::string file = read_bytes(path("all.safetensors"));
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = header_length << 8 | static_cast<uint8_t>(file[i]);
    EXPECT_EQ(header_length % 8, 0u);
    const auto header = nlohmann::json::parse(file.substr(8, header_length));
    EXPECT_EQ(header.at("__metadata__").at("model"), "mobileclip_s0");
    uint64_t total = 0;
    for (const auto& [dtype, name] : dtypes) EXPECT_EQ(header.at(std::string("t.") + name).at("dtype"), name);
    for (const auto& [name, tensor] : tensors) total += tensor.bytes();
    EXPECT_EQ(file.size(), 8 + header_length + total);
}

TEST_F(SafetensorsFiles, EmptyFileOfTensorsRoundTrips) {
    write_safetensors(path("none.safetensors"), {});
    const SafetensorsFile back = read_safetensors(path("none.safetensors"));
    EXPECT_TRUE(back.tensors.empty());
    EXPECT_TRUE(back.metadata.empty());
}

TEST(Safetensors, ReadsTheCheckpointFixture) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const SafetensorsFile file = read_safetensors(fixtures / "checkpoints" / "expected.safetensors");
    EXPECT_EQ(file.tensors.size(), 13u);
    EXPECT_THAT(file.metadata.at("note"), HasSubstr("widened to F32"));
    EXPECT_EQ(file.tensors.at("conv.weight").shape(), (Shape{4, 3, 3, 3}));
    EXPECT_EQ(file.tensors.at("int32.ids").dtype(), DType::i32);
    EXPECT_EQ(file.tensors.at("bn.num_batches_tracked").dtype(), DType::i64);
}

TEST(Safetensors, ReadsTheModelFixtures) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    for (const char* model : {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"}) {
        SCOPED_TRACE(model);
        const SafetensorsFile file = read_safetensors(fixtures / model / "expected.safetensors");
        EXPECT_EQ(file.metadata.at("model"), model);
        // The metadata's JSON strings list one image per row of image.input.
        const auto images = nlohmann::json::parse(file.metadata.at("images"));
        // Token rows are 77 int64 ids opening with <start_of_text> = 49406.
        const Tensor& tokens = file.tensors.at("text.tokens");
        ASSERT_EQ(tokens.dtype(), DType::i64);
        ASSERT_EQ(tokens.rank(), 2u);
        EXPECT_EQ(tokens.dim(1), 77);
        EXPECT_EQ(tokens.dim(0), static_cast<int64_t>(nlohmann::json::parse(file.metadata.at("prompts")).size()));
        for (int64_t row = 0; row < tokens.dim(0); ++row) EXPECT_EQ(static_cast<const int64_t*>(tokens.data())[row * 77], 49406);
        // Images are [N, 3, H, W] in [0, 1] (no mean/std normalization).
        const Tensor& pixels = file.tensors.at("image.input");
        ASSERT_EQ(pixels.rank(), 4u);
        EXPECT_EQ(pixels.dim(0), static_cast<int64_t>(images.size()));
        EXPECT_EQ(pixels.dim(1), 3);
        for (float v : pixels.f32_span()) {
            ASSERT_GE(v, 0.0f);
            ASSERT_LE(v, 1.0f);
        }
        EXPECT_EQ(file.tensors.at("image.embedding").dim(1), 512);
    }
}

TEST_F(SafetensorsFiles, EveryTruncationIsRefused) {
    TensorMap tensors = {{"a", Tensor::from_f32({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6})}, {"b", Tensor::zeros(DType::i64, {2})}};
    write_safetensors(path("full.safetensors"), tensors);
    const std::string file = read_bytes(path("full.safetensors"));
    for (size_t length = 0; length < file.size(); ++length) {
        write_bytes(path("cut.safetensors"), std::string_view(file).substr(0, length));
        const std::string message = error_of([&] { read_safetensors(path("cut.safetensors")); });
        EXPECT_THAT(message, HasSubstr("cut.safetensors: ")) << length;
    }
    write_bytes(path("cut.safetensors"), std::string_view(file).substr(0, file.size() - 1));
    EXPECT_THAT(error_of([&] { read_safetensors(path("cut.safetensors")); }), HasSubstr("lies outside the file (truncated?)"));
    write_bytes(path("cut.safetensors"), std::string_view(file).substr(0, 20));
    EXPECT_THAT(error_of([&] { read_safetensors(path("cut.safetensors")); }), HasSubstr("exceeds the file size"));
    write_bytes(path("cut.safetensors"), std::string_view(file).substr(0, 5));
    EXPECT_THAT(error_of([&] { read_safetensors(path("cut.safetensors")); }), HasSubstr("too short to be a safetensors file"));
}

TEST_F(SafetensorsFiles, MalformedHeadersAreRefused) {
    const std::string data(16, '\0');
    struct Case {
        std::string header;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"{not json", "header is not JSON"},
        {"[1, 2]", "safetensors header is not a JSON object"},
        {R"({"__metadata__": [1]})", "__metadata__ is not an object"},
        {R"({"w": {"shape": [4], "data_offsets": [0, 16]}})", "tensor 'w': malformed entry"},
        {R"({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", "tensor 'w': unsupported dtype F8_E4M3"},
        {R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", "tensor 'w': shape is not an array"},
        {R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 16]}})", "tensor 'w': shape holds a non-integer"},
        {R"({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", "tensor 'w': negative dimension"},
        {R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}})", "tensor 'w': bad data_offsets"},
        {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", "tensor 'w': data [8, 0) lies outside the file"},
        {R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})", "tensor 'w': data [8, 24) lies outside the file"},
        {R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", "tensor 'w': holds 12 bytes but shape [2, 2] needs 16"},
        // 2^32 * 2^32 elements wrap to 0 in 64 bits: such a shape must not pass as empty.
        {R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", "tensor 'w': shape is implausibly large"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(cases[i].header);
        const auto file = path("case" + std::to_string(i) + ".safetensors");
        write_bytes(file, safetensors_file(cases[i].header, data));
        const std::string message = error_of([&] { read_safetensors(file); });
        EXPECT_THAT(message, HasSubstr(file.string() + ": "));
        EXPECT_THAT(message, HasSubstr(cases[i].message));
    }
    // A header length near 2^64 must not wrap around when added to the 8 length bytes.
    std::string huge(8, '\xff');
    huge += "{}";
    write_bytes(path("huge.safetensors"), huge);
    EXPECT_THAT(error_of([&] { read_safetensors(path("huge.safetensors")); }), HasSubstr("exceeds the file size"));
}

TEST_F(SafetensorsFiles, DetectionLooksAtContent) {
    write_safetensors(path("w.bin"), {{"x", Tensor::zeros_f32({2})}});
    const std::string file = read_bytes(path("w.bin"));
    EXPECT_TRUE(looks_like_safetensors(as_bytes(file), file.size()));
    EXPECT_FALSE(looks_like_safetensors(as_bytes(file), 12));  // the header would not fit
    EXPECT_FALSE(looks_like_safetensors(as_bytes(file.substr(0, 8)), file.size()));
    const std::string zip = std::string("PK\x03\x04", 4) + std::string(60, '\0');
    EXPECT_FALSE(looks_like_safetensors(as_bytes(zip), zip.size()));
    const std::string not_json = safetensors_file("[]      ", "");
    EXPECT_FALSE(looks_like_safetensors(as_bytes(not_json), not_json.size()));
}
