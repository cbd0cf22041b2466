// Core ML import: the MobileCLIP-S0 image packages mapped onto mclip's MCi graph by structure and
// run by mclip's own kernels reproduce the reference embeddings; other programs are refused with
// what did not match.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "coreml/import.h"
#include "io/safetensors.h"
#include "models/encoder.h"
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

}  // namespace
