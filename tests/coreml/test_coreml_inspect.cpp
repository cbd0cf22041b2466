// Core ML reading: the report of every fixture package equals its expected_info.json, every weight
// constant of the tiny packages decodes to its expected dense value bit for bit, and damaged
// packages are refused with an error that names the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coreml/package.h"
#include "io/safetensors.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// Keys of expected_info.json that describe how the fixture was made, not what a reader sees.
const char* const kGeneratorKeys[] = {"made_with", "expected_output", "prefold", "consts_mapped", "synthetic_zero_consts"};

// Differences between an expected JSON value and the actual one, as "path: expected X, got Y"
// lines; keys the reader adds beyond the expected ones are allowed.
void diff(const nlohmann::json& expected, const nlohmann::json& actual, const std::string& path, std::vector<std::string>& out) {
    if (expected.is_object() && actual.is_object()) {
        for (const auto& [key, value] : expected.items()) {
            if (!actual.contains(key)) {
                out.push_back(path + "/" + key + ": missing");
            } else {
                diff(value, actual[key], path + "/" + key, out);
            }
        }
        return;
    }
    if (expected.is_array() && actual.is_array() && expected.size() == actual.size()) {
        for (size_t i = 0; i < expected.size(); ++i) diff(expected[i], actual[i], path + "/" + std::to_string(i), out);
        return;
    }
    if (expected.is_number() && actual.is_number()) {
        if (expected.get<double>() != actual.get<double>()) out.push_back(path + ": expected " + expected.dump() + ", got " + actual.dump());
        return;
    }
    if (expected != actual) out.push_back(path + ": expected " + expected.dump().substr(0, 300) + ", got " + actual.dump().substr(0, 300));
}

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

class CoreMLFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CoreMLFixture, ReportMatchesExpectedInfo) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = fixtures / "coreml";
    nlohmann::json expected = read_json(dir / (GetParam() + ".expected_info.json"));
    for (const char* key : kGeneratorKeys) expected.erase(key);
    const nlohmann::json actual = coreml::inspect(dir / (GetParam() + ".mlpackage"));
    std::vector<std::string> differences;
    diff(expected, actual, "", differences);
    std::string text;
    for (size_t i = 0; i < differences.size() && i < 20; ++i) text += differences[i] + "\n";
    EXPECT_TRUE(differences.empty()) << differences.size() << " differences:\n" << text;
}

INSTANTIATE_TEST_SUITE_P(Packages, CoreMLFixture,
                         ::testing::Values("tiny.fp32", "tiny.fp16", "tiny.lut4", "tiny.lut8", "tiny.int8", "mobileclip_s0_image.fp32",
                                           "mobileclip_s0_text.lut8", "mobileclip_s0_image.lut4"),
                         [](const auto& info) {
                             std::string name = info.param;
                             for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                             return name;
                         });

class CoreMLTinyWeights : public ::testing::TestWithParam<std::string> {};

TEST_P(CoreMLTinyWeights, EveryWeightDecodesExactly) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = fixtures / "coreml";
    const coreml::Package package = coreml::read_package(dir / ("tiny." + GetParam() + ".mlpackage"));
    const SafetensorsFile expected = read_safetensors(dir / ("tiny." + GetParam() + ".expected_weights.safetensors"));
    size_t checked = 0;
    for (const auto& op : coreml::main_block(package.model).operations()) {
        const std::string name = coreml::op_name(op);
        const auto found = expected.tensors.find(name);
        if (found == expected.tensors.end()) continue;
        const Tensor dense = coreml::dense_constant(package, op);
        const Tensor want = found->second.to_f32();
        ASSERT_EQ(dense.shape(), want.shape()) << name;
        ASSERT_EQ(std::memcmp(dense.data(), want.data(), want.bytes()), 0) << name << " differs from its expected dense value";
        ++checked;
    }
    EXPECT_EQ(checked, expected.tensors.size()) << "every expected weight is an op of the program";
}

INSTANTIATE_TEST_SUITE_P(Variants, CoreMLTinyWeights, ::testing::Values("fp32", "fp16", "lut4", "lut8", "int8"));

// A writable copy of a tiny fixture package, for damaging, removed at the end of the test.
struct PackageCopy {
    TempDir dir{"coreml_bad"};
    fs::path package;
    PackageCopy(const fs::path& fixtures, const std::string& variant) : package(dir.path() / ("tiny." + variant + ".mlpackage")) {
        fs::copy(fixtures / "coreml" / ("tiny." + variant + ".mlpackage"), package, fs::copy_options::recursive);
        for (const auto& entry : fs::recursive_directory_iterator(package)) {
            fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
        }
    }
};

fs::path weight_file(const fs::path& package) { return package / "Data/com.apple.CoreML/weights/weight.bin"; }

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// The inspector's error for a package, or "" when it reads.
std::string inspect_error(const fs::path& package) {
    try {
        coreml::inspect(package);
    } catch (const Error& e) {
        return std::string(to_string(e.code())) + ": " + e.what();
    }
    return "";
}

TEST(CoreMLBadInput, MissingWeightFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    fs::remove(weight_file(package));
    EXPECT_THAT(inspect_error(package), HasSubstr("weight.bin"));
}

TEST(CoreMLBadInput, TruncatedWeightFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    const std::string bytes = read_bytes(weight_file(package));
    write_bytes(weight_file(package), bytes.substr(0, bytes.size() - 100));
    EXPECT_THAT(inspect_error(package), HasSubstr("truncated"));
    write_bytes(weight_file(package), bytes.substr(0, 40));
    EXPECT_THAT(inspect_error(package), HasSubstr("truncated"));
}

TEST(CoreMLBadInput, WrongSentinel) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "lut4");
    const fs::path& package = copy.package;
    std::string bytes = read_bytes(weight_file(package));
    // The second record follows the first blob's data at the next 64-aligned offset.
    uint64_t data_offset = 0, size = 0;
    std::memcpy(&size, bytes.data() + 64 + 8, 8);
    std::memcpy(&data_offset, bytes.data() + 64 + 16, 8);
    const uint64_t second = (data_offset + size + 63) / 64 * 64;
    bytes[second] = 0x00;
    write_bytes(weight_file(package), bytes);
    const std::string error = inspect_error(package);
    EXPECT_THAT(error, HasSubstr("sentinel"));
    EXPECT_THAT(error, HasSubstr(std::to_string(second)));
}

TEST(CoreMLBadInput, OffsetsAndSizesOutOfRange) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    const std::string original = read_bytes(weight_file(package));
    std::string bytes = original;
    const uint64_t huge = uint64_t{1} << 40;
    std::memcpy(bytes.data() + 64 + 8, &huge, 8);  // first blob's size
    write_bytes(weight_file(package), bytes);
    EXPECT_THAT(inspect_error(package), HasSubstr("past the end of the file"));
    bytes = original;
    std::memcpy(bytes.data() + 64 + 16, &huge, 8);  // first blob's data offset
    write_bytes(weight_file(package), bytes);
    EXPECT_THAT(inspect_error(package), HasSubstr("past the end of the file"));
    bytes = original;
    const uint32_t count = 1000;
    std::memcpy(bytes.data(), &count, 4);  // more blobs than the file holds
    write_bytes(weight_file(package), bytes);
    EXPECT_THAT(inspect_error(package), HasSubstr("truncated"));
}

TEST(CoreMLBadInput, BlobReferenceWithoutRecord) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    const fs::path spec_path = package / "Data/com.apple.CoreML/model.mlmodel";
    coreml::spec::Model model;
    ASSERT_TRUE(model.ParseFromString(read_bytes(spec_path)));
    auto& block = (*(*model.mutable_mlprogram()->mutable_functions())["main"].mutable_block_specializations())["CoreML6"];
    bool changed = false;
    for (auto& op : *block.mutable_operations()) {
        auto found = op.mutable_attributes()->find("val");
        if (found != op.mutable_attributes()->end() && found->second.has_blobfilevalue()) {
            found->second.mutable_blobfilevalue()->set_offset(999999);
            changed = true;
            break;
        }
    }
    ASSERT_TRUE(changed);
    write_bytes(spec_path, model.SerializeAsString());
    EXPECT_THAT(inspect_error(package), HasSubstr("no blob record at offset 999999"));
}

TEST(CoreMLBadInput, ManifestPathLeavesPackage) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    nlohmann::json manifest = read_json(package / "Manifest.json");
    for (auto& [id, item] : manifest["itemInfoEntries"].items()) {
        if (item["name"] == "weights") item["path"] = "com.apple.CoreML/../../../etc";
    }
    write_bytes(package / "Manifest.json", manifest.dump());
    EXPECT_THAT(inspect_error(package), HasSubstr("leaves the package"));
}

TEST(CoreMLBadInput, ManifestItemMissing) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    fs::remove(package / "Data/com.apple.CoreML/model.mlmodel");
    EXPECT_THAT(inspect_error(package), HasSubstr("does not exist in the package"));
}

TEST(CoreMLBadInput, UnknownOp) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    const fs::path spec_path = package / "Data/com.apple.CoreML/model.mlmodel";
    coreml::spec::Model model;
    ASSERT_TRUE(model.ParseFromString(read_bytes(spec_path)));
    auto& block = (*(*model.mutable_mlprogram()->mutable_functions())["main"].mutable_block_specializations())["CoreML6"];
    for (auto& op : *block.mutable_operations()) {
        if (op.type() == "gelu") op.set_type("frobnicate");
    }
    write_bytes(spec_path, model.SerializeAsString());
    EXPECT_THAT(inspect_error(package), HasSubstr("unknown MIL op type 'frobnicate'"));
}

TEST(CoreMLBadInput, SpecDoesNotParse) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    const fs::path spec_path = package / "Data/com.apple.CoreML/model.mlmodel";
    const std::string bytes = read_bytes(spec_path);
    write_bytes(spec_path, bytes.substr(0, bytes.size() / 2));
    EXPECT_THAT(inspect_error(package), HasSubstr("protobuf does not parse"));
}

// A compiled model is read from its metadata.json alone (written here from the published keys:
// compiled models can only be made on Apple platforms).
TEST(CoreMLCompiled, MetadataJsonIsReported) {
    const TempDir temp("coreml_mlmodelc");
    const fs::path dir = temp.path() / "MobileCLIPImage.mlmodelc";
    fs::create_directories(dir);
    write_bytes(dir / "metadata.json", R"json([{
      "metadataOutputVersion": "3.0", "specificationVersion": 7,
      "modelType": {"name": "MLModelType_mlProgram"},
      "storagePrecision": "Mixed (Float16, Palettized (8 bits))", "computePrecision": "Float16",
      "mlProgramOperationTypeHistogram": {"Ios16.conv": 95, "Ios16.constexprLutToDense": 60},
      "userDefinedMetadata": {"com.github.apple.coremltools.version": "7.2"},
      "inputSchema": [{"name": "image", "type": "Image", "width": "256", "height": "256", "colorspace": "RGB"}],
      "outputSchema": [{"name": "embedding", "type": "MultiArray", "dataType": "Float16", "shape": "[1, 512]"}]
    }])json");
    const nlohmann::json doc = coreml::inspect(dir);
    EXPECT_EQ(doc["format"], "mlmodelc");
    EXPECT_EQ(doc["quantization"], "lut8");
    EXPECT_EQ(doc["modelType"], "mlProgram");
    EXPECT_EQ(doc["specificationVersion"], 7);
    EXPECT_EQ(doc["ops"]["Ios16.conv"], 95);
    EXPECT_EQ(doc["inputs"][0]["name"], "image");
    write_bytes(dir / "metadata.json", "{\"not\": \"an array\"}");
    EXPECT_THAT(inspect_error(dir), HasSubstr("expected a JSON array"));
}

// Without the histogram in metadata.json (older compilers), the ops are counted in model.mil,
// which also gives the opset. Written here in the text format coremlc produces.
TEST(CoreMLCompiled, ModelMilGivesTheOpsetAndTheOps) {
    const TempDir temp("coreml_mlmodelc_mil");
    const fs::path dir = temp.path() / "Tiny.mlmodelc";
    fs::create_directories(dir);
    write_bytes(dir / "metadata.json", R"json([{"specificationVersion": 7, "modelType": {"name": "MLModelType_mlProgram"},
      "storagePrecision": "Float16", "inputSchema": [], "outputSchema": []}])json");
    write_bytes(dir / "model.mil", R"mil(program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "1436.100.10"}})]
{
    func main<ios16>(tensor<fp32, [1, 3, 32, 32]> image) {
            tensor<fp32, []> image__scaled___y_0 = const()[name = tensor<string, []>("image__scaled___y_0"), val = tensor<fp32, []>(0x1.010102p-8)];
            tensor<fp32, [1, 3, 32, 32]> image__scaled__ = mul(x = image, y = image__scaled___y_0)[name = tensor<string, []>("image__scaled__")];
            tensor<fp16, [1, 8, 16, 16]> conv_0 = conv(x = cast_1, weight = w_0, strides = s, pad_type = p, groups = g)[name = tensor<string, []>("conv_0")];
            tensor<fp16, [1, 8, 16, 16]> conv_1 = conv(x = conv_0, weight = w_1, strides = s, pad_type = p, groups = g)[name = tensor<string, []>("conv_1")];
            tensor<fp16, [1, 4, 16, 16]> a, tensor<fp16, [1, 4, 16, 16]> b = split(x = conv_1, num_splits = n, axis = c)[name = tensor<string, []>("split_0")];
    } -> (conv_1);
}
)mil");
    const nlohmann::json doc = coreml::inspect(dir);
    EXPECT_EQ(doc["opset"], "ios16");
    EXPECT_EQ(doc["ops"]["const"], 1);
    EXPECT_EQ(doc["ops"]["mul"], 1);
    EXPECT_EQ(doc["ops"]["conv"], 2);
    EXPECT_EQ(doc["ops"]["split"], 1);
    EXPECT_EQ(doc["ops"].size(), 4u);
    EXPECT_EQ(doc["quantization"], "fp16");
}

TEST(CoreMLTool, InfoJsonOnPackage) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path package = fixtures / "coreml" / "tiny.lut4.mlpackage";
    const CommandResult result = run_command(shell_quote(mclip_executable().string()) + " info --json " + shell_quote(package.string()));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const nlohmann::json doc = nlohmann::json::parse(result.out);
    EXPECT_EQ(doc["format"], "mlpackage");
    EXPECT_EQ(doc["quantization"], "lut4");
    EXPECT_EQ(doc["weight_storage"]["summary"], "palettized 4-bit (fp16 lut) + fp16");
    const CommandResult text = run_command(shell_quote(mclip_executable().string()) + " info " + shell_quote(package.string()));
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_THAT(text.out, HasSubstr("quantization:"));
    EXPECT_THAT(text.out, HasSubstr("lut4"));
}

TEST(CoreMLTool, InfoOnDamagedPackageFails) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PackageCopy copy(fixtures, "fp32");
    const fs::path& package = copy.package;
    fs::remove(weight_file(package));
    const CommandResult result = run_command(shell_quote(mclip_executable().string()) + " info " + shell_quote(package.string()));
    EXPECT_NE(result.exit_code, 0);
    EXPECT_THAT(result.err, HasSubstr("weight.bin"));
}

}  // namespace
