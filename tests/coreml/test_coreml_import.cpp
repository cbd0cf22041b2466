// Core ML import: the MobileCLIP-S0 image packages mapped onto mclip's MCi graph by structure and
// run by mclip's own kernels reproduce the reference embeddings; other programs are refused with
// what did not match.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coreml/import.h"
#include "io/safetensors.h"
#include "models/encoder.h"
#include "models/model.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

struct Distance {
    double max_abs = 0;
    double relative = 0;  // ‖Δ‖ / ‖ref‖
};

Distance distance(const float* got, const float* want, int64_t n) {
    Distance d;
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; ++i) {
        d.max_abs = std::max(d.max_abs, static_cast<double>(std::fabs(got[i] - want[i])));
        diff += static_cast<double>(got[i] - want[i]) * (got[i] - want[i]);
        norm += static_cast<double>(want[i]) * want[i];
    }
    d.relative = std::sqrt(diff / norm);
    return d;
}

// The images the package's input receives (integer pixels 0..255), preprocessed the way the
// program does: one float32 multiply by the scale, one add of the bias.
Tensor program_input(const Tensor& pixels, const coreml::ImportedEncoder& encoder) {
    Tensor out = pixels.to_f32().clone();
    const int64_t plane = pixels.dim(2) * pixels.dim(3);
    for (int64_t i = 0; i < out.elements(); ++i) {
        const int c = static_cast<int>((i / plane) % 3);
        out.f32()[i] = out.f32()[i] * encoder.scale + encoder.bias[c];
    }
    return out;
}

Tensor embed(const coreml::ImportedEncoder& encoder, const Tensor& images) {
    const auto graph = make_mci_image_encoder(encoder.config, WeightSource::from_map(encoder.tensors, "imported package"), GraphOptions{});
    return graph->encode(images);
}

TEST(CoreMLImport, S0ImageFp32MatchesReference) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const coreml::ImportedEncoder encoder = coreml::import_image_encoder(coreml::read_package(fixtures / "coreml/mobileclip_s0_image.fp32.mlpackage"));
    EXPECT_EQ(encoder.config.name, "mobileclip_s0");
    EXPECT_FLOAT_EQ(encoder.scale, 1.0f / 255.0f);
    const SafetensorsFile reference = read_safetensors(fixtures / "mobileclip_s0/expected.safetensors");
    Tensor pixels = reference.tensors.at("image.input").to_f32().clone();
    for (int64_t i = 0; i < pixels.elements(); ++i) pixels.f32()[i] = std::round(pixels.f32()[i] * 255.0f);
    const Tensor got = embed(encoder, program_input(pixels, encoder));
    const Tensor want = reference.tensors.at("image.embedding.reparameterized").to_f32();
    ASSERT_EQ(got.shape(), want.shape());
    const Distance d = distance(got.f32(), want.f32(), want.elements());
    std::printf("S0 image fp32 package vs reference: max |diff| %.3g, relative %.3g\n", d.max_abs, d.relative);
    EXPECT_LT(d.max_abs, 1e-4) << "relative " << d.relative;
}

TEST(CoreMLImport, S0ImageLut4MatchesItsExpectedOutput) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const coreml::ImportedEncoder encoder = coreml::import_image_encoder(coreml::read_package(fixtures / "coreml/mobileclip_s0_image.lut4.mlpackage"));
    const SafetensorsFile expected = read_safetensors(fixtures / "coreml/mobileclip_s0_image.lut4.expected.safetensors");
    const Tensor got = embed(encoder, program_input(expected.tensors.at("pixels"), encoder));
    const Tensor want = expected.tensors.at("embedding").to_f32();
    ASSERT_EQ(got.shape(), want.shape());
    const Distance d = distance(got.f32(), want.f32(), want.elements());
    std::printf("S0 image lut4 package vs its expected output: max |diff| %.3g, relative %.3g\n", d.max_abs, d.relative);
    EXPECT_LT(d.max_abs, 1e-4) << "relative " << d.relative;
}

TEST(CoreMLImport, S0TextLut8MatchesItsExpectedOutput) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const coreml::ImportedEncoder encoder = coreml::import_text_encoder(coreml::read_package(fixtures / "coreml/mobileclip_s0_text.lut8.mlpackage"));
    EXPECT_EQ(encoder.config.name, "mobileclip_s0");
    const SafetensorsFile expected = read_safetensors(fixtures / "coreml/mobileclip_s0_text.lut8.expected.safetensors");
    const Tensor tokens = expected.tensors.at("tokens");
    ASSERT_EQ(tokens.dtype(), DType::i32);
    const auto graph = make_text_encoder(encoder.config, WeightSource::from_map(encoder.tensors, "imported package"), GraphOptions{});
    const Tensor got = graph->encode(static_cast<const int32_t*>(tokens.data()), static_cast<int>(tokens.dim(0)));
    const Tensor want = expected.tensors.at("embedding").to_f32();
    ASSERT_EQ(got.shape(), want.shape());
    const Distance d = distance(got.f32(), want.f32(), want.elements());
    std::printf("S0 text lut8 package vs its expected output: max |diff| %.3g, relative %.3g\n", d.max_abs, d.relative);
    EXPECT_LT(d.max_abs, 1e-4) << "relative " << d.relative;
}

TEST(CoreMLImport, RefusesAProgramThatIsNotMobileCLIP) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    try {
        coreml::import_image_encoder(coreml::read_package(fixtures / "coreml/tiny.fp32.mlpackage"));
        FAIL() << "the tiny two-input model was imported";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::invalid_input);
        EXPECT_THAT(e.what(), HasSubstr("exactly one image input"));
    }
}

// The tool end to end: both S0 packages become one model file whose embeddings (loaded through
// the public API) are the packages' references.
TEST(CoreMLImport, ConvertWritesAModelFileThatEmbeds) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = make_temp_dir("coreml_import");
    const fs::path out = dir / "s0.gguf";
    const CommandResult result = run_command(shell_quote(mclip_executable().string()) + " convert --in " +
                                             shell_quote((fixtures / "coreml/mobileclip_s0_image.fp32.mlpackage").string()) + " --in " +
                                             shell_quote((fixtures / "coreml/mobileclip_s0_text.lut8.mlpackage").string()) + " --out " +
                                             shell_quote(out.string()));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto model = ClipModel::load(out);
    EXPECT_EQ(model->config().name, "mobileclip_s0");

    const SafetensorsFile reference = read_safetensors(fixtures / "mobileclip_s0/expected.safetensors");
    Tensor pixels = reference.tensors.at("image.input").to_f32().clone();
    for (int64_t i = 0; i < pixels.elements(); ++i) pixels.f32()[i] = std::round(pixels.f32()[i] * 255.0f) * (1.0f / 255.0f);
    const Tensor image = model->encode_images(pixels);
    const Tensor want_image = reference.tensors.at("image.embedding.reparameterized").to_f32();
    ASSERT_EQ(image.shape(), want_image.shape());
    EXPECT_LT(distance(image.f32(), want_image.f32(), want_image.elements()).max_abs, 1e-4);

    const SafetensorsFile text_expected = read_safetensors(fixtures / "coreml/mobileclip_s0_text.lut8.expected.safetensors");
    const Tensor tokens = text_expected.tensors.at("tokens");
    const Tensor text = model->encode_tokens(static_cast<const int32_t*>(tokens.data()), static_cast<int>(tokens.dim(0)));
    const Tensor want_text = text_expected.tensors.at("embedding").to_f32();
    ASSERT_EQ(text.shape(), want_text.shape());
    EXPECT_LT(distance(text.f32(), want_text.f32(), want_text.elements()).max_abs, 1e-4);

    // And back out to Core ML with the tool.
    const fs::path package = dir / "S0Text.mlpackage";
    const CommandResult exported = run_command(shell_quote(mclip_executable().string()) + " export coreml --model " + shell_quote(out.string()) +
                                               " --out " + shell_quote(package.string()) + " --encoder text --weights lut8");
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const CommandResult info = run_command(shell_quote(mclip_executable().string()) + " info --json " + shell_quote(package.string()));
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_EQ(nlohmann::json::parse(info.out)["quantization"], "lut8");
    fs::remove_all(dir);
}

TEST(CoreMLImport, OnePackageGivesAFileWithThatEncoderOnly) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = make_temp_dir("coreml_import_one");
    const fs::path out = dir / "text_only.gguf";
    const CommandResult result = run_command(shell_quote(mclip_executable().string()) + " convert --in " +
                                             shell_quote((fixtures / "coreml/mobileclip_s0_text.lut8.mlpackage").string()) + " --out " +
                                             shell_quote(out.string()));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto model = ClipModel::load(out);
    EXPECT_TRUE(model->has_text_encoder());
    EXPECT_FALSE(model->has_image_encoder());
    const SafetensorsFile expected = read_safetensors(fixtures / "coreml/mobileclip_s0_text.lut8.expected.safetensors");
    const Tensor tokens = expected.tensors.at("tokens");
    const Tensor text = model->encode_tokens(static_cast<const int32_t*>(tokens.data()), 1);
    EXPECT_LT(distance(text.f32(), expected.tensors.at("embedding").to_f32().f32(), text.elements()).max_abs, 1e-4);
    try {
        model->encode_images(Tensor::zeros_f32({1, 3, 256, 256}));
        FAIL() << "a text-only file embedded an image";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("holds only the text encoder"));
    }
    fs::remove_all(dir);
}

TEST(CoreMLImport, ConvertRefusesBadInputAndWritesNothing) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = make_temp_dir("coreml_import_bad");
    const fs::path out = dir / "model.gguf";
    const std::string tool = shell_quote(mclip_executable().string());
    // The tiny two-input model is no MobileCLIP encoder.
    CommandResult result = run_command(tool + " convert --in " + shell_quote((fixtures / "coreml/tiny.fp32.mlpackage").string()) + " --in " +
                                       shell_quote((fixtures / "coreml/mobileclip_s0_text.lut8.mlpackage").string()) + " --out " +
                                       shell_quote(out.string()));
    EXPECT_NE(result.exit_code, 0);
    EXPECT_THAT(result.err, HasSubstr("text encoder package has exactly one int32"));
    EXPECT_FALSE(fs::exists(out));
    // A package without its weight file.
    const fs::path broken = dir / "image.mlpackage";
    fs::copy(fixtures / "coreml/mobileclip_s0_image.lut4.mlpackage", broken, fs::copy_options::recursive);
    fs::permissions(broken / "Data/com.apple.CoreML/weights", fs::perms::owner_all, fs::perm_options::add);
    fs::remove(broken / "Data/com.apple.CoreML/weights/weight.bin");
    result = run_command(tool + " convert --in " + shell_quote(broken.string()) + " --in " +
                         shell_quote((fixtures / "coreml/mobileclip_s0_text.lut8.mlpackage").string()) + " --out " + shell_quote(out.string()));
    EXPECT_NE(result.exit_code, 0);
    EXPECT_THAT(result.err, HasSubstr("weight.bin"));
    EXPECT_FALSE(fs::exists(out));
    std::error_code ec;
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1) << "only the damaged copy is in the folder";
    fs::remove_all(dir, ec);
}

}  // namespace
