// The PyTorch checkpoint reader and the format-detecting read_checkpoint: the files written by
// real torch.save in the fixtures, then crafted archives for what the fixtures do not cover.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/pytorch_checkpoint.h"
#include "io/safetensors.h"
#include "io/io_test_support.h"
#include "support/fixtures.h"
#include "torch_archive_builder.h"

using namespace mclip;
using namespace mclip::testing;
using ::testing::HasSubstr;

namespace {

std::filesystem::path checkpoints_dir(const std::filesystem::path& fixtures) { return fixtures / "checkpoints"; }

// Every tensor equals the one in expected.safetensors, bit for bit. The fixture stores f16, bf16
// and f64 tensors widened to f32 (f16 and bf16 widen exactly; f64 rounds to nearest, as the
// fixture writer did) and 0-d tensors with shape [1].
void expect_matches_expected(const TensorMap& ours, const std::filesystem::path& expected_path) {
    const SafetensorsFile expected = read_safetensors(expected_path);
    ASSERT_EQ(ours.size(), expected.tensors.size());
    for (const auto& [name, reference] : expected.tensors) {
        SCOPED_TRACE(name);
        auto it = ours.find(name);
        ASSERT_NE(it, ours.end());
        const Tensor& tensor = it->second;
        if (tensor.rank() == 0) {
            EXPECT_EQ(reference.shape(), (Shape{1}));
        } else {
            EXPECT_EQ(tensor.shape(), reference.shape());
        }
        ASSERT_EQ(tensor.elements(), reference.elements());
        if (reference.dtype() == DType::f32) {
            const Tensor widened = tensor.to_f32();
            EXPECT_EQ(std::memcmp(widened.data(), reference.data(), reference.bytes()), 0);
        } else {
            ASSERT_EQ(tensor.dtype(), reference.dtype());
            EXPECT_EQ(std::memcmp(tensor.data(), reference.data(), reference.bytes()), 0);
        }
    }
}

float at(const Tensor& t, int64_t i) { return t.to_f32().f32()[i]; }

class CraftedArchive : public ::testing::Test {
protected:
    void SetUp() override { dir_ = make_temp_dir("mclip-pt"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path path(const std::string& name) const { return dir_ / name; }
    std::filesystem::path dir_;
};

std::vector<float> iota_floats(int n) {
    std::vector<float> v(n);
    for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i) + 0.5f;
    return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Files written by real torch.save

TEST(PytorchCheckpoint, StateDictMatchesExpected) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = checkpoints_dir(fixtures);
    const TensorMap tensors = read_pytorch_checkpoint(dir / "state_dict.pt");
    expect_matches_expected(tensors, dir / "expected.safetensors");
    // Stored dtypes are kept; callers widen with to_f32.
    EXPECT_EQ(tensors.at("conv.weight").dtype(), DType::f32);
    EXPECT_EQ(tensors.at("half.weight").dtype(), DType::f16);
    EXPECT_EQ(tensors.at("bf16.weight").dtype(), DType::bf16);
    EXPECT_EQ(tensors.at("double.weight").dtype(), DType::f64);
    EXPECT_EQ(tensors.at("int32.ids").dtype(), DType::i32);
    EXPECT_EQ(tensors.at("bn.num_batches_tracked").dtype(), DType::i64);
    EXPECT_EQ(tensors.at("logit_scale").rank(), 0u);
}

TEST(PytorchCheckpoint, ViewsOfOneStorageAgree) {
    // transposed, sliced and shared_a view one 48-element storage: shared_a is [6, 8] from offset
    // 0, transposed is its transpose, sliced is rows 2..4 and columns 1..3 (offset 17 = 2*8 + 1).
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const TensorMap t = read_pytorch_checkpoint(checkpoints_dir(fixtures) / "state_dict.pt");
    const float* shared = t.at("shared_a").f32();
    const float* transposed = t.at("transposed").f32();
    const float* sliced = t.at("sliced").f32();
    for (int i = 0; i < 8; ++i) {
        for (int j = 0; j < 6; ++j) EXPECT_EQ(transposed[i * 6 + j], shared[j * 8 + i]);
    }
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) EXPECT_EQ(sliced[i * 3 + j], shared[(2 + i) * 8 + 1 + j]);
    }
}

TEST(PytorchCheckpoint, NestedStateDictIsFoundOrChosen) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = checkpoints_dir(fixtures);
    expect_matches_expected(read_pytorch_checkpoint(dir / "nested.pt"), dir / "expected.safetensors");
    expect_matches_expected(read_pytorch_checkpoint(dir / "nested.pt", "state_dict"), dir / "expected.safetensors");
    expect_matches_expected(read_checkpoint(dir / "nested.pt"), dir / "expected.safetensors");

    const std::string not_dict = error_of([&] { read_pytorch_checkpoint(dir / "nested.pt", "epoch"); });
    EXPECT_THAT(not_dict, HasSubstr("nested.pt"));
    EXPECT_THAT(not_dict, HasSubstr("'epoch' is a int, not a dict of tensors"));
    const std::string missing = error_of([&] { read_pytorch_checkpoint(dir / "nested.pt", "weights"); });
    EXPECT_THAT(missing, HasSubstr("no top-level entry 'weights'"));
    EXPECT_THAT(missing, HasSubstr("'state_dict' (dict)"));
    EXPECT_THAT(missing, HasSubstr("'arch' (str)"));
}

TEST(PytorchCheckpoint, LegacyFormatIsRefusedWithAdvice) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto file = checkpoints_dir(fixtures) / "legacy.pt";
    for (const std::string& message : {error_of([&] { read_pytorch_checkpoint(file); }), error_of([&] { read_checkpoint(file); })}) {
        EXPECT_THAT(message, HasSubstr("legacy.pt"));
        EXPECT_THAT(message, HasSubstr("legacy (pre-1.6) PyTorch format; re-save it with torch.save in a recent PyTorch"));
    }
}

TEST(PytorchCheckpoint, NotACheckpointIsRefused) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto file = checkpoints_dir(fixtures) / "not_a_checkpoint.pt";
    const std::string direct = error_of([&] { read_pytorch_checkpoint(file); });
    EXPECT_THAT(direct, HasSubstr("not_a_checkpoint.pt: not a PyTorch checkpoint"));
    const std::string detected = error_of([&] { read_checkpoint(file); });
    EXPECT_THAT(detected, HasSubstr("not_a_checkpoint.pt: not a checkpoint (neither safetensors nor a PyTorch zip archive)"));
}

TEST(PytorchCheckpoint, TruncatedArchiveIsRefused) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto file = checkpoints_dir(fixtures) / "truncated.pt";
    for (const std::string& message : {error_of([&] { read_pytorch_checkpoint(file); }), error_of([&] { read_checkpoint(file); })}) {
        EXPECT_THAT(message, HasSubstr("truncated.pt: truncated or corrupt PyTorch checkpoint"));
    }
}

TEST(PytorchCheckpoint, HostilePickleIsRefusedWithoutRunningIt) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::filesystem::path sentinel = "/tmp/mclip-pickle-executed";
    std::filesystem::remove(sentinel);
    const auto file = checkpoints_dir(fixtures) / "hostile.pt";
    for (const std::string& message : {error_of([&] { read_pytorch_checkpoint(file); }), error_of([&] { read_checkpoint(file); })}) {
        EXPECT_THAT(message, HasSubstr("hostile.pt: refusing to load"));
        EXPECT_THAT(message, HasSubstr("'posix.system'"));
        EXPECT_THAT(message, HasSubstr("never runs pickle code"));
    }
    EXPECT_FALSE(std::filesystem::exists(sentinel));
}

TEST(PytorchCheckpoint, FormatsAreDetectedByContent) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = checkpoints_dir(fixtures);
    EXPECT_EQ(detect_checkpoint_format(dir / "state_dict.pt"), CheckpointFormat::pytorch_zip);
    EXPECT_EQ(detect_checkpoint_format(dir / "nested.pt"), CheckpointFormat::pytorch_zip);
    EXPECT_EQ(detect_checkpoint_format(dir / "truncated.pt"), CheckpointFormat::pytorch_zip);
    EXPECT_EQ(detect_checkpoint_format(dir / "legacy.pt"), CheckpointFormat::pytorch_legacy);
    EXPECT_EQ(detect_checkpoint_format(dir / "not_a_checkpoint.pt"), CheckpointFormat::unknown);
    EXPECT_EQ(detect_checkpoint_format(dir / "expected.safetensors"), CheckpointFormat::safetensors);

    // A safetensors file goes through the same entry point, whatever its name.
    const auto renamed_dir = make_temp_dir("mclip-detect");
    std::filesystem::copy_file(dir / "expected.safetensors", renamed_dir / "weights.pt");
    expect_matches_expected(read_checkpoint(renamed_dir / "weights.pt"), dir / "expected.safetensors");
    EXPECT_THAT(error_of([&] { read_checkpoint(renamed_dir / "weights.pt", "state_dict"); }), HasSubstr("no entry 'state_dict'"));
    std::filesystem::remove_all(renamed_dir);
}

TEST(PytorchCheckpoint, MissingFileNamesIt) {
    const std::string message = error_of([] { read_checkpoint("/nonexistent/mclip.pt"); });
    EXPECT_THAT(message, HasSubstr("/nonexistent/mclip.pt"));
}

// ---------------------------------------------------------------------------------------------
// Crafted archives

TEST_F(CraftedArchive, Protocol4PicklesWithParametersAndMetadata) {
    // What torch.save(..., pickle_protocol=4) of an nn.Module state_dict() looks like: FRAME,
    // SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE, Parameters, and the OrderedDict's `_metadata`
    // attribute set by BUILD after its items.
    PickleWriter p;
    p.proto(4).op(0x95).raw(std::string(8, '\0'));  // a FRAME whose length hint is ignored
    p.stack_global("collections", "OrderedDict").op(0x94).empty_tuple().reduce().op(0x94);
    p.mark().short_text("layer.weight");
    p.stack_global("torch._utils", "_rebuild_parameter").mark();
    p.stack_global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().short_text("storage").stack_global("torch", "FloatStorage").short_text("0").short_text("cpu").integer(12).tuple().binpersid();
    p.integer(0).int_tuple({3, 4}).int_tuple({4, 1}).boolean(false).ordered_dict().tuple().reduce();
    p.boolean(true).ordered_dict().tuple().reduce();
    p.short_text("layer.bias").op(0x8a).raw(std::string("\x00", 1));  // LONG1 of zero bytes is 0: not a tensor yet
    p.setitems();
    // Replace the bogus bias (an int) by a real tensor with SETITEM: the last value wins.
    p.short_text("layer.bias").tensor("DoubleStorage", "1", 2, 0, {2}, {1}).setitem();
    p.empty_dict().short_text("_metadata").ordered_dict().short_text("").empty_dict().short_text("version").integer(1).setitem().setitem().setitem().build();
    p.stop();
    write_torch_archive(path("p4.pt"), p.bytes(), {{"0", bytes_of(iota_floats(12))}, {"1", bytes_of(std::vector<double>{-1.25, 3e300})}});

    const TensorMap t = read_pytorch_checkpoint(path("p4.pt"));
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t.at("layer.weight").shape(), (Shape{3, 4}));
    for (int i = 0; i < 12; ++i) EXPECT_EQ(t.at("layer.weight").f32()[i], i + 0.5f);
    ASSERT_EQ(t.at("layer.bias").dtype(), DType::f64);
    EXPECT_EQ(static_cast<const double*>(t.at("layer.bias").data())[0], -1.25);
    EXPECT_EQ(static_cast<const double*>(t.at("layer.bias").data())[1], 3e300);
}

TEST_F(CraftedArchive, StridedViewsBecomeContiguousCopies) {
    PickleWriter p;
    p.proto(2).ordered_dict().mark();
    p.text("permuted").tensor("FloatStorage", "0", 24, 0, {2, 3, 4}, {1, 2, 6});    // x.permute of a [4, 3, 2]
    p.text("broadcast").tensor("FloatStorage", "0", 24, 4, {3, 4}, {0, 1});         // expand of a row
    p.text("strided_rows").tensor("FloatStorage", "0", 24, 1, {2, 5}, {12, 2});     // x[..., 1::2]
    p.text("empty").tensor("FloatStorage", "0", 24, 3, {0, 7}, {7, 1});
    p.text("scalar").tensor("FloatStorage", "0", 24, 23, {}, {});
    p.setitems().stop();
    write_torch_archive(path("views.pt"), p.bytes(), {{"0", bytes_of(iota_floats(24))}});

    const TensorMap t = read_pytorch_checkpoint(path("views.pt"));
    const float* permuted = t.at("permuted").f32();
    for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 3; ++b) {
            for (int c = 0; c < 4; ++c) EXPECT_EQ(permuted[(a * 3 + b) * 4 + c], (a + 2 * b + 6 * c) + 0.5f);
        }
    }
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 4; ++j) EXPECT_EQ(t.at("broadcast").f32()[i * 4 + j], 4 + j + 0.5f);
    }
    for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 5; ++j) EXPECT_EQ(t.at("strided_rows").f32()[i * 5 + j], 1 + 12 * i + 2 * j + 0.5f);
    }
    EXPECT_EQ(t.at("empty").shape(), (Shape{0, 7}));
    EXPECT_EQ(t.at("scalar").rank(), 0u);
    EXPECT_EQ(t.at("scalar").f32()[0], 23.5f);
    // Copies, not aliases: writing one tensor leaves the others alone.
    Tensor broadcast = t.at("broadcast");
    broadcast.f32()[0] = -1;
    EXPECT_EQ(t.at("permuted").f32()[(1 * 3 + 0) * 4 + 0], 1.5f);
    EXPECT_EQ(t.at("broadcast").f32()[4], 4.5f);
}

TEST_F(CraftedArchive, EveryStorageTypeKeepsItsDtype) {
    struct Case {
        const char* storage_type;
        DType dtype;
        std::string bytes;
    };
    const std::vector<Case> cases = {
        {"HalfStorage", DType::f16, bytes_of(std::vector<uint16_t>{0x3c00, 0xc000})},
        {"BFloat16Storage", DType::bf16, bytes_of(std::vector<uint16_t>{0x3f80, 0x4049})},
        {"DoubleStorage", DType::f64, bytes_of(std::vector<double>{0.1, -7})},
        {"LongStorage", DType::i64, bytes_of(std::vector<int64_t>{int64_t{1} << 40, -3})},
        {"IntStorage", DType::i32, bytes_of(std::vector<int32_t>{49407, -1})},
        {"ShortStorage", DType::i16, bytes_of(std::vector<int16_t>{-300, 300})},
        {"CharStorage", DType::i8, bytes_of(std::vector<int8_t>{-128, 127})},
        {"ByteStorage", DType::u8, bytes_of(std::vector<uint8_t>{0, 255})},
        {"BoolStorage", DType::boolean, bytes_of(std::vector<uint8_t>{1, 0})},
    };
    PickleWriter p;
    p.proto(2).empty_dict().mark();
    std::vector<ArchiveRecord> storages;
    for (size_t i = 0; i < cases.size(); ++i) {
        p.text(cases[i].storage_type).tensor(cases[i].storage_type, std::to_string(i), 2, 0, {2}, {1});
        storages.push_back({std::to_string(i), cases[i].bytes});
    }
    p.setitems().stop();
    write_torch_archive(path("dtypes.pt"), p.bytes(), storages);
    const TensorMap t = read_pytorch_checkpoint(path("dtypes.pt"));
    for (const auto& c : cases) {
        SCOPED_TRACE(c.storage_type);
        const Tensor& tensor = t.at(c.storage_type);
        EXPECT_EQ(tensor.dtype(), c.dtype);
        ASSERT_EQ(tensor.bytes(), c.bytes.size());
        EXPECT_EQ(std::memcmp(tensor.data(), c.bytes.data(), c.bytes.size()), 0);
    }
    EXPECT_EQ(at(t.at("BFloat16Storage"), 1), 3.140625f);
}

TEST_F(CraftedArchive, BigEndianArchivesAreSwapped) {
    auto big_endian = [](auto value) {
        std::string bytes(sizeof value, '\0');
        std::memcpy(bytes.data(), &value, sizeof value);
        std::reverse(bytes.begin(), bytes.end());
        return bytes;
    };
    PickleWriter p;
    p.proto(2).empty_dict().mark();
    p.text("f").tensor("FloatStorage", "0", 2, 0, {2}, {1});
    p.text("d").tensor("DoubleStorage", "1", 1, 0, {}, {});
    p.text("h").tensor("HalfStorage", "2", 3, 1, {2}, {1});
    p.setitems().stop();
    write_torch_archive(path("big.pt"), p.bytes(),
                        {{"0", big_endian(1.5f) + big_endian(-2.25f)},
                         {"1", big_endian(-0.1)},
                         {"2", big_endian(uint16_t{0x3c00}) + big_endian(uint16_t{0xc000}) + big_endian(uint16_t{0x3800})}},
                        "big");
    const TensorMap t = read_pytorch_checkpoint(path("big.pt"));
    EXPECT_EQ(t.at("f").f32()[0], 1.5f);
    EXPECT_EQ(t.at("f").f32()[1], -2.25f);
    EXPECT_EQ(static_cast<const double*>(t.at("d").data())[0], -0.1);
    EXPECT_EQ(at(t.at("h"), 0), -2.0f);
    EXPECT_EQ(at(t.at("h"), 1), 0.5f);
}

TEST_F(CraftedArchive, CompressedRecordsAreRead) {
    PickleWriter p;
    p.proto(2).empty_dict().text("w").tensor("FloatStorage", "0", 12, 0, {12}, {1}).setitem().stop();
    write_zip(path("deflated.pt"),
              {{"archive/data.pkl", p.bytes()}, {"archive/data/0", bytes_of(iota_floats(12))}, {"archive/version", "3\n"}}, true);
    const TensorMap t = read_pytorch_checkpoint(path("deflated.pt"));
    EXPECT_EQ(t.at("w").f32()[11], 11.5f);
}

TEST_F(CraftedArchive, StorageDefectsAreRefused) {
    auto one_tensor = [](int64_t numel, int64_t offset, std::vector<int64_t> size, std::vector<int64_t> stride) {
        PickleWriter p;
        p.proto(2).empty_dict().text("w").tensor("FloatStorage", "0", numel, offset, size, stride).setitem().stop();
        return p.bytes();
    };
    const std::string four_floats = bytes_of(iota_floats(4));

    write_torch_archive(path("missing.pt"), one_tensor(4, 0, {4}, {1}), {});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("missing.pt")); }),
                HasSubstr("missing storage record 'archive/data/0' (needed by tensor 'w')"));

    write_torch_archive(path("short.pt"), one_tensor(6, 0, {6}, {1}), {{"0", four_floats}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("short.pt")); }),
                HasSubstr("holds 16 bytes, but the pickle declares 6 elements of f32 (24 bytes)"));

    write_torch_archive(path("huge.pt"), one_tensor(int64_t{1} << 40, 0, {1 << 20, 1 << 20}, {1 << 20, 1}), {{"0", four_floats}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("huge.pt")); }), HasSubstr("but the pickle declares 1099511627776 elements"));

    write_torch_archive(path("overrun.pt"), one_tensor(4, 1, {2, 2}, {2, 1}), {{"0", four_floats}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("overrun.pt")); }), HasSubstr("reaches past the end of storage '0' (4 elements)"));

    write_torch_archive(path("overflow.pt"), one_tensor(4, 0, {2, 2}, {int64_t{1} << 40, int64_t{1} << 40}), {{"0", four_floats}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("overflow.pt")); }), HasSubstr("reaches past the end of storage"));

    write_torch_archive(path("negative.pt"), one_tensor(4, 0, {-2, 2}, {2, 1}), {{"0", four_floats}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("negative.pt")); }), HasSubstr("tensor size holds an implausible value -2"));

    // A stride-0 view may not expand a tiny storage into gigabytes.
    write_torch_archive(path("expand.pt"), one_tensor(4, 0, {1 << 20, 1 << 20}, {0, 0}), {{"0", four_floats}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("expand.pt")); }), HasSubstr("would expand the checkpoint far beyond its stored data"));
}

TEST_F(CraftedArchive, GlobalsOutsideTheAllowListAreRefusedByName) {
    PickleWriter stack;
    stack.proto(4).stack_global("builtins", "eval").short_text("print(1)").op(0x85).reduce().stop();
    write_torch_archive(path("eval.pt"), stack.bytes(), {});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("eval.pt")); }), HasSubstr("asks for the global 'builtins.eval'"));

    // A whole pickled model names its class: refused with the advice to save a state dict.
    PickleWriter model;
    model.proto(2).global("mobileclip.models", "MobileCLIP").empty_tuple().op(0x81).stop();
    write_torch_archive(path("model.pt"), model.bytes(), {});
    const std::string message = error_of([&] { read_pytorch_checkpoint(path("model.pt")); });
    EXPECT_THAT(message, HasSubstr("'mobileclip.models.MobileCLIP'"));
    EXPECT_THAT(message, HasSubstr("torch.save(model.state_dict(), path)"));

    // Allowed globals used the wrong way are refused too.
    PickleWriter misuse;
    misuse.proto(2).global("torch", "FloatStorage").empty_tuple().reduce().stop();
    write_torch_archive(path("misuse.pt"), misuse.bytes(), {});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("misuse.pt")); }), HasSubstr("'torch.FloatStorage' cannot be called"));
}

TEST_F(CraftedArchive, MalformedPicklesAreRefused) {
    struct Case {
        std::string pickle;
        std::string message;
    };
    const std::vector<Case> cases = {
        {PickleWriter().proto(6).stop().bytes(), "pickle protocol 6 is newer than 5"},
        {PickleWriter().proto(2).raw("I1\n").stop().bytes(), "text opcode 'I' of pickle protocol 0"},
        {PickleWriter().proto(2).op(0xff).bytes(), "unknown pickle opcode 0xff"},
        {PickleWriter().proto(2).op(0x82).raw("\x01").bytes(), "unsupported pickle opcode 0x82"},
        {PickleWriter().proto(2).stop().bytes(), "STOP with an empty stack"},
        {PickleWriter().proto(2).empty_dict().mark().text("k").setitems().stop().bytes(), "odd number of items"},
        {PickleWriter().proto(2).setitem().bytes(), "stack underflow"},
        {PickleWriter().proto(2).mark().op('0').op('0').bytes(), "no MARK to pop to"},
        {PickleWriter().proto(2).binget(7).bytes(), "memo entry 7 was never stored"},
        {PickleWriter().proto(2).empty_list().text("k").integer(1).setitem().bytes(), "SETITEM applied to a list, not a dict"},
        {PickleWriter().proto(2).op(0x8a).raw("\x09").raw(std::string(9, '\x01')).bytes(), "integer wider than 64 bits"},
        {PickleWriter().proto(2).text("unterminated").bytes().substr(0, 10), "truncated"},
        {PickleWriter().proto(2).empty_dict().text("w").mark().text("storage").global("torch", "FloatStorage").text("0").tuple().binpersid().bytes(),
         "unsupported persistent id"},
        {PickleWriter().proto(2).empty_dict().text("a").storage("FloatStorage", "0", 4).text("b").storage("HalfStorage", "0", 4).bytes(),
         "storage '0' is declared twice with different types or sizes"},
        {PickleWriter().proto(2).integer(3).empty_tuple().reduce().bytes(), "REDUCE calls a int"},
        {PickleWriter().proto(2).ordered_dict().op('2').empty_tuple().op(0x81).bytes(), "NEWOBJ of a dict"},
        {PickleWriter().proto(2).empty_list().empty_dict().build().bytes(), "BUILD on a list"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(cases[i].message);
        const auto file = path("malformed" + std::to_string(i) + ".pt");
        write_torch_archive(file, cases[i].pickle, {});
        const std::string message = error_of([&] { read_pytorch_checkpoint(file); });
        EXPECT_THAT(message, HasSubstr(file.string() + ": corrupt or unsupported checkpoint pickle (archive/data.pkl, byte "));
        EXPECT_THAT(message, HasSubstr(cases[i].message));
    }
}

TEST_F(CraftedArchive, StateDictSelection) {
    const std::string weights = bytes_of(iota_floats(4));
    auto archive_with = [&](const std::string& name, const std::vector<std::string>& keys) {
        // {key_i: {"w": tensor}} for each key, beside {"epoch": 1}.
        PickleWriter p;
        p.proto(2).empty_dict().mark().text("epoch").integer(1);
        for (const auto& key : keys) p.text(key).empty_dict().text("w").tensor("FloatStorage", "0", 4, 0, {4}, {1}).setitem();
        p.setitems().stop();
        write_torch_archive(path(name), p.bytes(), {{"0", weights}});
        return path(name);
    };
    // "model" is preferred over other candidates.
    EXPECT_EQ(read_pytorch_checkpoint(archive_with("pref.pt", {"ema", "model"})).count("w"), 1u);
    // Two candidates and no preferred name: the user must choose.
    const auto ambiguous = archive_with("ambiguous.pt", {"ema", "student"});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(ambiguous); }),
                HasSubstr("several entries hold dicts of tensors ('ema', 'student'); choose one with --key"));
    EXPECT_EQ(read_pytorch_checkpoint(ambiguous, "student").at("w").f32()[3], 3.5f);
    // Nothing that looks like a state dict.
    const auto none = archive_with("none.pt", {});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(none); }), HasSubstr("no state dict found"));
    // A checkpoint that is not a dict at all.
    PickleWriter list;
    list.proto(2).empty_list().stop();
    write_torch_archive(path("list.pt"), list.bytes(), {});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("list.pt")); }), HasSubstr("the checkpoint holds a list, not a dict of tensors"));
}

TEST_F(CraftedArchive, DeepAndCyclicStructuresCostNoRecursion) {
    // 300k lists each nested in the next (MARK ... LIST), then the outermost appended to itself: a reader that recursed or reference-counted would overflow its stack or leak.
    constexpr int kDepth = 300000;
    PickleWriter p;
    p.proto(2);
    for (int i = 0; i < kDepth; ++i) p.mark();
    p.empty_list();
    for (int i = 0; i < kDepth; ++i) p.op('l');
    p.binput(0).binget(0).op('a').stop();
    write_torch_archive(path("deep.pt"), p.bytes(), {});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("deep.pt")); }), HasSubstr("holds a list"));
}

TEST_F(CraftedArchive, ZipArchivesThatAreNotCheckpoints) {
    write_zip(path("photos.zip"), {{"cat.png", "not really a png"}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("photos.zip")); }), HasSubstr("not a PyTorch checkpoint"));
    EXPECT_THAT(error_of([&] { read_checkpoint(path("photos.zip")); }), HasSubstr("not a checkpoint (neither"));
    // Storages without their pickle: data.pkl must come first, as torch.save writes it.
    write_zip(path("no_pickle.pt"), {{"archive/version", "3\n"}, {"archive/data/0", bytes_of(iota_floats(4))}});
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("no_pickle.pt")); }),
                HasSubstr("not a PyTorch checkpoint (torch.save writes a zip archive whose first entry is data.pkl)"));
    // A torch-like archive whose byteorder record is junk.
    write_torch_archive(path("order.pt"), PickleWriter().proto(2).empty_dict().stop().bytes(), {}, "middle");
    EXPECT_THAT(error_of([&] { read_pytorch_checkpoint(path("order.pt")); }), HasSubstr("unknown byte order 'middle'"));
    // An empty file and a directory.
    std::ofstream(path("empty.pt")).close();
    EXPECT_THAT(error_of([&] { read_checkpoint(path("empty.pt")); }), HasSubstr("not a checkpoint"));
    EXPECT_THAT(error_of([&] { read_checkpoint(dir_); }), HasSubstr("is a directory"));
}
