// GGUF: metadata of every type, tensors in every stored precision with their error bounds, the
// layout conventions of the format, and refusals of damaged or malformed files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "common/error.h"
#include "io/gguf.h"
#include "io/io_test_support.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
using ::testing::HasSubstr;

namespace {

// GGUF bytes assembled by hand, following the layout in gguf.h, for files the writer never makes.
class GgufBytes {
public:
    GgufBytes(uint32_t version, uint64_t tensors, uint64_t kvs) {
        bytes_ = "GGUF";
        put(version);
        put(tensors);
        put(kvs);
    }
    template <typename T>
    GgufBytes& put(T v) {
        bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
        return *this;
    }
    GgufBytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        bytes_ += s;
        return *this;
    }
    GgufBytes& kv_u32(const std::string& key, uint32_t value) { return str(key).put<uint32_t>(4).put(value); }
    GgufBytes& tensor_info(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
        str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
        for (uint64_t d : ne) put(d);
        return put(type).put(offset);
    }
    GgufBytes& pad_to(size_t alignment) {
        bytes_.append((alignment - bytes_.size() % alignment) % alignment, '\0');
        return *this;
    }
    GgufBytes& data(size_t n) {
        bytes_.append(n, '\x01');
        return *this;
    }
    const std::string& bytes() const { return bytes_; }

private:
    std::string bytes_;
};

std::vector<float> random_values(size_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 random(seed);
    std::uniform_real_distribution<float> uniform(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(random);
    return v;
}

class GgufFiles : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-gguf"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path path(const std::string& name) const { return dir_ / name; }
    std::filesystem::path dir_;
};

}  // namespace

TEST_F(GgufFiles, MetadataOfEveryTypeRoundTrips) {
    using json = nlohmann::json;
    const std::vector<std::pair<GgufType, json>> scalars = {
        {GgufType::u8, 200},          {GgufType::i8, -100},
        {GgufType::u16, 60000},       {GgufType::i16, -30000},
        {GgufType::u32, 4000000000u}, {GgufType::i32, -2000000000},
        {GgufType::f32, 1.5},         {GgufType::boolean, true},
        {GgufType::string, "h\xc3\xa9llo, \"quoted\"\n"},
        {GgufType::u64, 18446744073709551000ull},
        {GgufType::i64, -4611686018427387904ll},
        {GgufType::f64, 0.1},
    };
    const std::vector<std::pair<GgufType, json>> arrays = {
        {GgufType::u8, {0, 1, 255}},          {GgufType::i8, {-128, 127}},
        {GgufType::u16, {65535}},             {GgufType::i16, {-32768, 5}},
        {GgufType::u32, {1, 4294967295u}},    {GgufType::i32, json::array()},
        {GgufType::f32, {0.5, -2.0, 1e-3f}},  {GgufType::boolean, {true, false, true}},
        {GgufType::string, {"a", "", "\xc3\xbc"}},
        {GgufType::u64, {1ull << 63}},        {GgufType::i64, {-1, 1ll << 62}},
        {GgufType::f64, {1e300, -0.25}},
    };
    GgufWriter writer;
    for (size_t i = 0; i < scalars.size(); ++i) writer.set("scalar." + std::to_string(i), {scalars[i].first, GgufType::u32, scalars[i].second});
    for (size_t i = 0; i < arrays.size(); ++i) writer.set("array." + std::to_string(i), {GgufType::array, arrays[i].first, arrays[i].second});
    writer.set_string("general.name", "first");
    writer.set_string("general.name", "replaced");  // setting a key again replaces it
    writer.write(path("meta.gguf"));

    const GgufFile file = GgufFile::open(path("meta.gguf"));
    EXPECT_EQ(file.version(), 3u);
    EXPECT_EQ(file.metadata().size(), scalars.size() + arrays.size() + 2);  // + general.alignment, general.name
    for (size_t i = 0; i < scalars.size(); ++i) {
        SCOPED_TRACE("scalar " + std::to_string(i));
        const GgufValue& v = file.metadata().at("scalar." + std::to_string(i));
        EXPECT_EQ(v.type, scalars[i].first);
        if (v.type == GgufType::f32) EXPECT_EQ(v.value.get<float>(), scalars[i].second.get<float>());
        else EXPECT_EQ(v.value, scalars[i].second);
    }
    for (size_t i = 0; i < arrays.size(); ++i) {
        SCOPED_TRACE("array " + std::to_string(i));
        const GgufValue& v = file.metadata().at("array." + std::to_string(i));
        EXPECT_EQ(v.type, GgufType::array);
        EXPECT_EQ(v.array_type, arrays[i].first);
        ASSERT_EQ(v.value.size(), arrays[i].second.size());
        for (size_t j = 0; j < v.value.size(); ++j) {
            if (v.array_type == GgufType::f32) EXPECT_EQ(v.value[j].get<float>(), arrays[i].second[j].get<float>());
            else EXPECT_EQ(v.value[j], arrays[i].second[j]);
        }
    }
    EXPECT_EQ(file.get_string("general.name"), "replaced");
    EXPECT_EQ(file.get_int("scalar.4"), 4000000000);
    EXPECT_EQ(file.get_float("scalar.11"), 0.1);
    EXPECT_EQ(file.get_string_array("array.8"), (std::vector<std::string>{"a", "", "\xc3\xbc"}));
    EXPECT_EQ(file.get_float_array("array.11"), (std::vector<double>{1e300, -0.25}));
    EXPECT_EQ(file.get_string_or("no.such.key", "fallback"), "fallback");
    EXPECT_THAT(error_of([&] { file.get_string("scalar.0"); }), HasSubstr("metadata key 'scalar.0' is not a string"));
    EXPECT_THAT(error_of([&] { file.get_int("scalar.8"); }), HasSubstr("'scalar.8' is not an integer"));
    EXPECT_THAT(error_of([&] { file.get_float_array("array.8"); }), HasSubstr("is not an array of floats"));
    EXPECT_THAT(error_of([&] { file.get_int("no.such.key"); }), HasSubstr("meta.gguf: missing metadata key 'no.such.key'"));
}

TEST_F(GgufFiles, TensorsInEveryPrecisionStayWithinTheirBounds) {
    // Values of both signs with magnitudes in [0.01, 4]: normal numbers in f16 and bf16.
    std::vector<float> values = random_values(4 * 96, 7, 0.01f, 4.0f);
    for (size_t i = 0; i < values.size(); i += 3) values[i] = -values[i];
    const Tensor source = Tensor::from_f32({4, 96}, values);
    Tensor ids = Tensor::zeros(DType::i32, {5});
    for (int i = 0; i < 5; ++i) static_cast<int32_t*>(ids.data())[i] = 49400 + i;

    GgufWriter writer;
    writer.add_tensor("w.f32", source, GgmlType::f32);
    writer.add_tensor("w.f16", source, GgmlType::f16);
    writer.add_tensor("w.bf16", source, GgmlType::bf16);
    writer.add_tensor("w.q8", source, GgmlType::q8_0);
    writer.add_tensor("ids", ids, GgmlType::i32);
    writer.add_tensor("scalar", Tensor::from_f32({}, std::vector<float>{2.5f}));
    writer.write(path("t.gguf"));

    const GgufFile file = GgufFile::open(path("t.gguf"));
    ASSERT_EQ(file.tensors().size(), 6u);
    const Tensor f32 = file.tensor_f32("w.f32");
    const Tensor f16 = file.tensor_f32("w.f16");
    const Tensor bf16 = file.tensor_f32("w.bf16");
    const Tensor q8 = file.tensor_f32("w.q8");
    for (const Tensor* t : {&f32, &f16, &bf16, &q8}) EXPECT_EQ(t->shape(), (Shape{4, 96}));
    for (size_t i = 0; i < values.size(); ++i) {
        const float x = values[i];
        EXPECT_EQ(f32.f32()[i], x);
        // Round to nearest: half an ulp, 2^-11 relative for f16 and 2^-8 for bf16.
        EXPECT_LE(std::fabs(f16.f32()[i] - x), std::fabs(x) * 0x1p-11f) << i;
        EXPECT_LE(std::fabs(bf16.f32()[i] - x), std::fabs(x) * 0x1p-8f) << i;
    }
    // Q8_0 (ggml): blocks of 32 along a row, each an f16 scale d = max|x| / 127 and 32 int8 q,
    // value = d * q. Rounding q costs d/2; storing d in f16 costs |q| * d * 2^-11 <= 127 d 2^-11.
    const GgufTensorInfo* info = file.find_tensor("w.q8");
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->type, GgmlType::q8_0);
    EXPECT_EQ(info->bytes, values.size() / 32 * 34);
    const std::byte* blocks = file.tensor_data(*info);
    for (size_t b = 0; b < values.size() / 32; ++b) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(values[b * 32 + i]));
        uint16_t d_bits;
        std::memcpy(&d_bits, blocks + b * 34, 2);
        const float d = f16_to_f32(d_bits);
        EXPECT_NEAR(d, amax / 127, amax / 127 * 0x1p-11f);
        int max_q = 0;
        for (int i = 0; i < 32; ++i) {
            const int q = static_cast<int8_t>(blocks[b * 34 + 2 + i]);
            max_q = std::max(max_q, std::abs(q));
            const float bound = amax / 127 * (0.5f + 127.0f / 2048) * 1.0001f;
            EXPECT_LE(std::fabs(d * q - values[b * 32 + i]), bound);
            EXPECT_EQ(q8.f32()[b * 32 + i], d * q);
        }
        EXPECT_EQ(max_q, 127);
    }
    const Tensor ids_back = file.tensor_f32("ids");
    EXPECT_EQ(file.find_tensor("ids")->type, GgmlType::i32);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ids_back.f32()[i], 49400.0f + i);
    EXPECT_EQ(file.tensor_f32("scalar").f32()[0], 2.5f);
    EXPECT_THAT(error_of([&] { file.tensor_f32("absent"); }), HasSubstr("missing tensor 'absent'"));
}

TEST_F(GgufFiles, LayoutFollowsTheFormat) {
    GgufWriter writer;
    writer.add_tensor("a", Tensor::from_f32({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6}));
    writer.add_tensor("b", Tensor::from_f32({5}, std::vector<float>{1, 2, 3, 4, 5}));
    writer.add_tensor("c", Tensor::zeros_f32({3, 7}), GgmlType::f16);
    writer.write(path("layout.gguf"));
    const std::string bytes = read_bytes(path("layout.gguf"));

    // Header: "GGUF", version 3, tensor count 3, one key (general.alignment = 64, a uint32).
    ASSERT_GT(bytes.size(), 64u);
    EXPECT_EQ(bytes.substr(0, 4), "GGUF");
    uint32_t version, type, alignment, n_dims;
    uint64_t tensors, kvs, key_length, name_length, ne0, ne1;
    std::memcpy(&version, &bytes[4], 4);
    std::memcpy(&tensors, &bytes[8], 8);
    std::memcpy(&kvs, &bytes[16], 8);
    std::memcpy(&key_length, &bytes[24], 8);
    EXPECT_EQ(version, 3u);
    EXPECT_EQ(tensors, 3u);
    EXPECT_EQ(kvs, 1u);
    ASSERT_EQ(bytes.substr(32, key_length), "general.alignment");
    size_t at = 32 + key_length;
    std::memcpy(&type, &bytes[at], 4);
    std::memcpy(&alignment, &bytes[at + 4], 4);
    EXPECT_EQ(type, static_cast<uint32_t>(GgufType::u32));
    EXPECT_EQ(alignment, 64u);
    // First tensor info: ne[0] is the innermost dimension, so PyTorch's [2, 3] is stored {3, 2}.
    at += 8;
    std::memcpy(&name_length, &bytes[at], 8);
    EXPECT_EQ(bytes.substr(at + 8, name_length), "a");
    at += 8 + name_length;
    std::memcpy(&n_dims, &bytes[at], 4);
    std::memcpy(&ne0, &bytes[at + 4], 8);
    std::memcpy(&ne1, &bytes[at + 12], 8);
    EXPECT_EQ(n_dims, 2u);
    EXPECT_EQ(ne0, 3u);
    EXPECT_EQ(ne1, 2u);

    const GgufFile file = GgufFile::open(path("layout.gguf"));
    EXPECT_EQ(file.alignment(), 64u);
    EXPECT_EQ(file.find_tensor("a")->shape, (Shape{2, 3}));
    for (const auto& info : file.tensors()) {
        SCOPED_TRACE(info.name);
        EXPECT_EQ(info.offset % 64, 0u);
        // The mapping starts on a page boundary, so pointer alignment is file-offset alignment.
        EXPECT_EQ(reinterpret_cast<uintptr_t>(file.tensor_data(info)) % 64, 0u);
    }
    EXPECT_EQ(file.file_size(), bytes.size());
}

TEST_F(GgufFiles, ContentHashFollowsContent) {
    auto make = [](float value, const std::string& name) {
        GgufWriter writer;
        writer.set_string("general.name", name);
        writer.add_tensor("w", Tensor::from_f32({2}, std::vector<float>{1, value}));
        return writer.content_sha256();
    };
    EXPECT_EQ(make(2, "m"), make(2, "m"));
    EXPECT_NE(make(2, "m"), make(3, "m"));
    EXPECT_NE(make(2, "m"), make(2, "n"));
    EXPECT_EQ(make(2, "m").size(), 64u);
}

TEST_F(GgufFiles, WriterRefusesWhatTheFormatCannotHold) {
    GgufWriter writer;
    EXPECT_THROW(writer.add_tensor("q", Tensor::zeros_f32({4, 33}), GgmlType::q8_0), Error);
    writer.add_tensor("w", Tensor::zeros_f32({2}));
    EXPECT_THROW(writer.add_tensor("w", Tensor::zeros_f32({2})), Error);
}

TEST_F(GgufFiles, EveryTruncationIsRefused) {
    GgufWriter writer;
    writer.set_string("general.name", "cut");
    writer.set_string_array("tokenizer.tokens", {"a", "b", "c"});
    writer.add_tensor("w", Tensor::from_f32({2, 32}, random_values(64, 3, -1, 1)), GgmlType::q8_0);
    writer.add_tensor("b", Tensor::from_f32({3}, std::vector<float>{1, 2, 3}));
    writer.write(path("full.gguf"));
    const std::string bytes = read_bytes(path("full.gguf"));
    // The writer pads after every tensor, the last one included: its 12 bytes end 52 bytes
    // before the end of the file. Cutting only that padding loses nothing.
    ASSERT_EQ(bytes.size() % 64, 0u);
    const size_t data_end = bytes.size() - (64 - 12);
    for (size_t length = 0; length < bytes.size(); ++length) {
        write_bytes(path("cut.gguf"), std::string_view(bytes).substr(0, length));
        if (length < data_end) {
            const std::string message = error_of([&] { GgufFile::open(path("cut.gguf")); });
            EXPECT_THAT(message, HasSubstr("cut.gguf: invalid GGUF file: ")) << length;
        } else {
            EXPECT_EQ(GgufFile::open(path("cut.gguf")).tensor_f32("b").f32()[2], 3.0f) << length;
        }
    }
    write_bytes(path("cut.gguf"), std::string_view(bytes).substr(0, data_end - 1));
    EXPECT_THAT(error_of([&] { GgufFile::open(path("cut.gguf")); }), HasSubstr("tensor 'b' lies past the end of the file (truncated?)"));
    write_bytes(path("cut.gguf"), std::string_view(bytes).substr(0, 60));
    EXPECT_THAT(error_of([&] { GgufFile::open(path("cut.gguf")); }), HasSubstr("truncated (the header runs past the end of the file)"));
}

TEST_F(GgufFiles, MalformedFilesAreRefused) {
    struct Case {
        std::string bytes;
        std::string message;
    };
    auto one_tensor = [](const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset, size_t data) {
        return GgufBytes(3, 1, 0).tensor_info("w", ne, type, offset).pad_to(32).data(data).bytes();
    };
    std::string bad_magic = GgufBytes(3, 0, 0).bytes();
    bad_magic[0] = 'X';
    const std::vector<Case> cases = {
        {bad_magic, "bad magic (not a GGUF model file)"},
        {GgufBytes(1, 0, 0).bytes(), "unsupported version 1"},
        {GgufBytes(4, 0, 0).bytes(), "unsupported version 4"},
        {"GGUF", "too short"},
        {GgufBytes(3, 1ull << 40, 0).bytes(), "implausible tensor or key count"},
        {GgufBytes(3, 0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0).bytes(), "unknown value type 13"},
        {GgufBytes(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(0).bytes(), "nested arrays are not supported ('k')"},
        {GgufBytes(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(42).put<uint64_t>(0).bytes(), "array 'k' has unknown element type 42"},
        // A count far beyond the file's bytes must fail before anything is sized by it.
        {GgufBytes(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(1ull << 27).data(16).bytes(), "array 'k' is implausibly long"},
        {GgufBytes(3, 0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1ull << 40).bytes(), "string length 1099511627776 is implausible"},
        {GgufBytes(3, 0, 1).kv_u32("general.alignment", 48).bytes(), "general.alignment must be a power of two"},
        {GgufBytes(3, 0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(1ull << 40).bytes(), "general.alignment must be a power of two"},
        {one_tensor({4, 4, 4, 4, 4, 4, 4, 4, 4}, 0, 0, 0), "tensor 'w' has 9 dimensions"},
        {one_tensor({1ull << 30, 1ull << 30}, 0, 0, 0), "tensor 'w' is implausibly large"},
        {one_tensor({4}, 2, 0, 16), "unsupported ggml type 2"},
        {one_tensor({33}, 8, 0, 64), "Q8_0 tensor 'w' rows are not a multiple of 32"},
        {one_tensor({4}, 0, 8, 64), "tensor 'w' is not aligned"},
        {one_tensor({4}, 0, 0, 8), "tensor 'w' lies past the end of the file"},
        {one_tensor({4}, 0, 64, 64), "tensor 'w' lies past the end of the file"},
        // An offset near 2^64 must not wrap around into the file.
        {one_tensor({16}, 0, ~uint64_t{31}, 64), "tensor 'w' lies past the end of the file"},
        {GgufBytes(3, 2, 0).tensor_info("w", {4}, 0, 0).tensor_info("w", {4}, 0, 32).pad_to(32).data(64).bytes(), "duplicate tensor 'w'"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(cases[i].message);
        const auto file = path("case" + std::to_string(i) + ".gguf");
        write_bytes(file, cases[i].bytes);
        const std::string message = error_of([&] { GgufFile::open(file); });
        EXPECT_THAT(message, HasSubstr(file.string() + ": invalid GGUF file: "));
        EXPECT_THAT(message, HasSubstr(cases[i].message));
    }
}

TEST_F(GgufFiles, HandWrittenFileIsRead) {
    // A minimal file as another writer would lay it out (alignment 32, the default).
    const std::string bytes = GgufBytes(3, 1, 1).kv_u32("answer", 42).tensor_info("w", {2}, 0, 0).pad_to(32).bytes() +
                              std::string("\x00\x00\xc0\x3f\x00\x00\x20\xc0", 8);  // 1.5f, -2.5f
    write_bytes(path("hand.gguf"), bytes);
    const GgufFile file = GgufFile::open(path("hand.gguf"));
    EXPECT_EQ(file.alignment(), 32u);
    EXPECT_EQ(file.get_int("answer"), 42);
    const Tensor w = file.tensor_f32("w");
    EXPECT_EQ(w.f32()[0], 1.5f);
    EXPECT_EQ(w.f32()[1], -2.5f);
}
