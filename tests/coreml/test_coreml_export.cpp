// Core ML export: the MobileCLIP-S0 image encoder written as a package and imported back gives the
// original embeddings within the bound of the weight format; the package has the layout
// coremltools writes; bad options leave nothing behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coreml/export.h"
#include "coreml/import.h"
#include "coreml/package.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/model_file.h"
#include "models/encoder.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
namespace spec = mclip::coreml::spec;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

double relative_distance(const Tensor& got, const Tensor& want) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < want.elements(); ++i) {
        const double d = static_cast<double>(got.f32()[i]) - want.f32()[i];
        diff += d * d;
        norm += static_cast<double>(want.f32()[i]) * want.f32()[i];
    }
    return std::sqrt(diff / norm);
}

Tensor embed(const coreml::ImportedEncoder& encoder, const Tensor& images) {
    return make_mci_image_encoder(encoder.config, WeightSource::from_map(encoder.tensors, "package"), GraphOptions{})->encode(images);
}

// Largest element difference of the unit-normalized embeddings (what cosine similarity sees).
double normalized_max_diff(const Tensor& got, const Tensor& want) {
    double ng = 0, nw = 0, worst = 0;
    for (int64_t i = 0; i < want.elements(); ++i) {
        ng += static_cast<double>(got.f32()[i]) * got.f32()[i];
        nw += static_cast<double>(want.f32()[i]) * want.f32()[i];
    }
    ng = std::sqrt(ng);
    nw = std::sqrt(nw);
    for (int64_t i = 0; i < want.elements(); ++i) worst = std::max(worst, std::fabs(got.f32()[i] / ng - want.f32()[i] / nw));
    return worst;
}

// The imported fp32 S0 image encoder, one fixture image and its embedding, made once for all
// round trips (each encode of S0 costs about a second on the CI machine).
struct Original {
    coreml::ImportedEncoder encoder;
    Tensor image;
    Tensor embedding;
};

const Original& original_s0(const fs::path& fixtures) {
    static const Original original = [&] {
        Original o;
        o.encoder = coreml::import_image_encoder(coreml::read_package(fixtures / "coreml/mobileclip_s0_image.fp32.mlpackage"));
        const SafetensorsFile reference = read_safetensors(fixtures / "mobileclip_s0/expected.safetensors");
        const Tensor all = reference.tensors.at("image.input").to_f32();
        o.image = Tensor::from_f32({1, 3, all.dim(2), all.dim(3)}, std::span<const float>(all.f32(), 3 * all.dim(2) * all.dim(3)));
        o.embedding = embed(o.encoder, o.image);
        return o;
    }();
    return original;
}

struct RoundTrip {
    const char* weights;
    const char* compute;
    double bound;  // largest difference of the re-imported model's normalized embedding
};

class CoreMLExport : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(CoreMLExport, RoundTripStaysWithinTheWeightFormatsBound) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const Original& original = original_s0(fixtures);
    const fs::path dir = make_temp_dir("coreml_export");
    const fs::path out = dir / "S0Image.mlpackage";
    coreml::ExportOptions options;
    options.weights = GetParam().weights;
    options.compute = GetParam().compute;
    coreml::export_package(original.encoder.config, original.encoder.tensors, out, options);

    const coreml::Package package = coreml::read_package(out);
    const coreml::ImportedEncoder back = coreml::import_image_encoder(package);
    EXPECT_EQ(back.config.name, "mobileclip_s0");
    const Tensor got = embed(back, original.image);
    const double worst = normalized_max_diff(got, original.embedding);
    std::printf("round trip %s weights, %s compute: normalized max |diff| %.3g, raw relative %.3g\n", GetParam().weights,
                GetParam().compute, worst, relative_distance(got, original.embedding));
    EXPECT_LT(worst, GetParam().bound);

    // The layout coremltools writes, and a report that names the storage.
    EXPECT_TRUE(fs::is_regular_file(out / "Manifest.json"));
    EXPECT_TRUE(fs::is_regular_file(out / "Data/com.apple.CoreML/model.mlmodel"));
    EXPECT_TRUE(fs::is_regular_file(out / "Data/com.apple.CoreML/weights/weight.bin"));
    const nlohmann::json report = coreml::inspect(out);
    EXPECT_EQ(report["quantization"], std::string(GetParam().weights) == "int8" ? "int8" : GetParam().weights == std::string("f32") ? "fp32" : GetParam().weights == std::string("f16") ? "fp16" : GetParam().weights);
    EXPECT_EQ(report["compute_precision"]["summary"], std::string(GetParam().compute) == "f16" ? "fp16" : "fp32");
    EXPECT_EQ(report["inputs"][0]["kind"], "image");
    EXPECT_EQ(report["outputs"][0]["name"], "embedding");
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Formats, CoreMLExport,
                         ::testing::Values(RoundTrip{"f32", "f32", 1e-4}, RoundTrip{"f16", "f16", 1e-2}, RoundTrip{"int8", "f16", 3e-2},
                                           RoundTrip{"lut8", "f16", 3e-2}),
                         [](const auto& info) { return std::string(info.param.weights); });

TEST(CoreMLExportText, RoundTripOfTheS0TextEncoder) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const coreml::ImportedEncoder original =
        coreml::import_text_encoder(coreml::read_package(fixtures / "coreml/mobileclip_s0_text.lut8.mlpackage"));
    const SafetensorsFile expected = read_safetensors(fixtures / "coreml/mobileclip_s0_text.lut8.expected.safetensors");
    const Tensor tokens = expected.tensors.at("tokens");
    const auto encode = [&](const coreml::ImportedEncoder& encoder) {
        return make_text_encoder(encoder.config, WeightSource::from_map(encoder.tensors, "package"), GraphOptions{})
            ->encode(static_cast<const int32_t*>(tokens.data()), static_cast<int>(tokens.dim(0)));
    };
    const Tensor want = encode(original);
    const fs::path dir = make_temp_dir("coreml_export_text");
    for (const char* weights : {"f16", "lut8"}) {
        coreml::ExportOptions options;
        options.encoder = "text";
        options.weights = weights;
        options.target = std::string(weights) == "f16" ? "iOS17" : "iOS16";
        const fs::path out = dir / (std::string("text_") + weights + ".mlpackage");
        coreml::export_package(original.config, original.tensors, out, options);
        const nlohmann::json report = coreml::inspect(out);
        EXPECT_EQ(report["inputs"][0]["name"], "text");
        EXPECT_EQ(report["inputs"][0]["dtype"], "int32");
        const Tensor got = encode(coreml::import_text_encoder(coreml::read_package(out)));
        const double worst = normalized_max_diff(got, want);
        std::printf("text round trip %s weights: normalized max |diff| %.3g, raw relative %.3g\n", weights, worst, relative_distance(got, want));
        EXPECT_LT(worst, std::string(weights) == "f16" ? 1e-2 : 3e-2);
    }
    fs::remove_all(dir);
}

// MobileCLIP-B's text encoder is causal: the package carries one [1, 1, 77, 77] mask added to every
// layer's attention scores, and the importer recognizes it (and so the architecture).
TEST(CoreMLExportText, CausalTextEncoderOfMobileClipB) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const GgufFile file = GgufFile::open(test_models_dir() / "mobileclip_b.gguf");
    const ModelConfig config = model_file_config(file);
    ASSERT_TRUE(config.text.causal);
    const WeightSource source = WeightSource::from_gguf(file);
    TensorMap tensors;
    for (const auto& info : file.tensors()) {
        if (info.name.rfind("txt.", 0) == 0) tensors[info.name] = source.get_any_shape(info.name);
    }
    const fs::path dir = make_temp_dir("coreml_export_causal");
    const fs::path out = dir / "BText.mlpackage";
    coreml::ExportOptions options;
    options.encoder = "text";
    options.compute = "f32";
    options.weights = "f32";
    coreml::export_package(config, tensors, out, options);

    const coreml::Package package = coreml::read_package(out);
    const spec::Block& block = coreml::main_block(package.model);
    int masked = 0;
    std::string mask_name;
    for (const auto& op : block.operations()) {
        if (op.type() != "add") continue;
        const std::string y = op.inputs().at("y").arguments(0).name();
        if (y.find("causal_mask") == std::string::npos) continue;
        ++masked;
        mask_name = y;
    }
    EXPECT_EQ(masked, config.text.layers) << "one masked score sum per layer";
    for (const auto& op : block.operations()) {
        if (op.type() != "const" || op.outputs(0).name() != mask_name) continue;
        const Tensor mask = coreml::dense_constant(package, op);
        ASSERT_EQ(mask.shape(), (Shape{1, 1, 77, 77}));
        for (int r = 0; r < 77; ++r) {
            for (int k = 0; k < 77; ++k) {
                const float v = mask.f32()[r * 77 + k];
                if (k <= r) {
                    ASSERT_EQ(v, 0.0f) << r << "," << k;
                } else {
                    ASSERT_LE(v, -1e4f) << r << "," << k;
                }
            }
        }
    }

    const coreml::ImportedEncoder back = coreml::import_text_encoder(package);
    EXPECT_EQ(back.config.name, "mobileclip_b");
    EXPECT_TRUE(back.config.text.causal);
    const SafetensorsFile expected = read_safetensors(fixtures / "coreml/mobileclip_s0_text.lut8.expected.safetensors");
    const Tensor tokens = expected.tensors.at("tokens");
    const auto encode = [&](const ModelConfig& c, const WeightSource& w) {
        return make_text_encoder(c, w, GraphOptions{})->encode(static_cast<const int32_t*>(tokens.data()), static_cast<int>(tokens.dim(0)));
    };
    const Tensor want = encode(config, source);
    const Tensor got = encode(back.config, WeightSource::from_map(back.tensors, "package"));
    EXPECT_LT(normalized_max_diff(got, want), 1e-5) << "f32 round trip of the causal encoder";
    fs::remove_all(dir);
}

TEST(CoreMLExportOptions, RefusedBeforeAnythingIsWritten) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const coreml::ImportedEncoder original =
        coreml::import_image_encoder(coreml::read_package(fixtures / "coreml/mobileclip_s0_image.lut4.mlpackage"));
    const fs::path dir = make_temp_dir("coreml_export_bad");
    coreml::ExportOptions options;
    options.weights = "f32";
    options.compute = "f16";
    EXPECT_THROW(coreml::export_package(original.config, original.tensors, dir / "x.mlpackage", options), Error);
    options = {};
    options.target = "iOS12";
    EXPECT_THROW(coreml::export_package(original.config, original.tensors, dir / "x.mlpackage", options), Error);
    EXPECT_TRUE(fs::is_empty(dir)) << "no package and no partial folder";
    fs::remove_all(dir);
}

}  // namespace
