// Parity of the folded engine with the reference PyTorch model, block by block, for every
// variant on every kernel backend: the training-form checkpoint is rebuilt from weights.json,
// folded in memory, and run on the fixture inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <ostream>

#include "common/error.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "models/calibration.h"
#include "models/encoder.h"
#include "models/fixture_weights.h"
#include "models/fold.h"
#include "models/model.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;

namespace {

constexpr double kTolerance = 1e-4;

// Whether `backend`'s kernels use the instruction set `set` on this CPU (its registry entry).
bool backend_has(const kernels::Backend& backend, const std::string& set) {
    for (const auto& entry : kernels::registered_backends()) {
        if (entry.backend == &backend) return std::find(entry.instruction_sets.begin(), entry.instruction_sets.end(), set) != entry.instruction_sets.end();
    }
    return false;
}

struct ParityCase {
    std::string model;
    std::string backend;
};

void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.model << " on " << c.backend; }

class EncoderParity : public ::testing::TestWithParam<ParityCase> {};

// Records intermediates of batch item 0 and compares them to the reference after the run.
struct IntermediateCheck {
    const SafetensorsFile& expected;
    std::map<std::string, double> errors;
    ActivationHook hook() {
        return [this](const std::string& name, const Tensor& value) {
            auto it = expected.tensors.find(name);
            if (it == expected.tensors.end()) return;
            const int64_t per_item = value.elements() / value.dim(0);
            Shape first = value.shape();
            first[0] = 1;
            const Tensor item = Tensor::from_f32(first, {value.f32(), static_cast<size_t>(per_item)});
            errors[name] = mclip::testing::max_relative_error(item.reshaped({1, per_item}), it->second.reshaped({1, per_item}));
        };
    }
};

TEST_P(EncoderParity, FoldedFromTrainingFormMatchesReference) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string model = GetParam().model;
    kernels::Backend* backend = nullptr;
    try {
        backend = &kernels::backend_by_name(GetParam().backend);
    } catch (const Error& e) {
        GTEST_SKIP() << e.what();
    }
    const GraphOptions options{backend, kernels::Precision::f32};
    const ModelConfig& config = model_config(model);
    const SafetensorsFile expected = read_safetensors(fixtures / model / "expected.safetensors");
    const TensorMap checkpoint = mclip::testing::generate_fixture_checkpoint(fixtures / model / "weights.json");
    const WeightSource source = WeightSource::from_map(checkpoint, model);
    const TensorMap folded = fold_checkpoint(config, source);
    const WeightSource weights = WeightSource::from_map(folded, model + " (folded)");

    IntermediateCheck image_check{expected, {}};
    auto image_encoder = config.image.kind == ImageEncoderKind::mci ? make_mci_image_encoder(config, weights, options)
                                                                    : make_vit_image_encoder(config, weights, options);
    const Tensor image_embedding = image_encoder->encode(expected.tensors.at("image.input"), image_check.hook());
    for (const auto& [name, error] : image_check.errors) {
        EXPECT_LE(error, kTolerance) << model << " " << name;
        std::printf("%s %-28s rel err %.3g\n", model.c_str(), name.c_str(), error);
    }
    EXPECT_GE(image_check.errors.size(), 4u) << "too few image intermediates were compared";

    const auto image_errors = mclip::testing::relative_error_per_row(image_embedding, expected.tensors.at("image.embedding"));
    for (size_t i = 0; i < image_errors.size(); ++i) {
        EXPECT_LE(image_errors[i], kTolerance) << model << " image " << i;
        std::printf("%s image %zu embedding rel err %.3g\n", model.c_str(), i, image_errors[i]);
    }

    IntermediateCheck text_check{expected, {}};
    auto text_encoder = make_text_encoder(config, weights, options);
    const Tensor& tokens = expected.tensors.at("text.tokens");
    const auto ids = mclip::testing::tokens_as_int32(tokens);
    const Tensor text_embedding = text_encoder->encode(ids.data(), static_cast<int>(tokens.dim(0)), text_check.hook());
    for (const auto& [name, error] : text_check.errors) {
        EXPECT_LE(error, kTolerance) << model << " " << name;
        std::printf("%s %-28s rel err %.3g\n", model.c_str(), name.c_str(), error);
    }
    EXPECT_GE(text_check.errors.size(), 4u) << "too few text intermediates were compared";
    const auto text_errors = mclip::testing::relative_error_per_row(text_embedding, expected.tensors.at("text.embedding"));
    for (size_t i = 0; i < text_errors.size(); ++i) {
        EXPECT_LE(text_errors[i], kTolerance) << model << " text " << i;
        std::printf("%s text %zu embedding rel err %.3g\n", model.c_str(), i, text_errors[i]);
    }
}

std::vector<ParityCase> all_cases() {
    std::vector<ParityCase> cases;
    for (const char* backend : {"reference", "onednn"}) {
        for (const char* model : {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"}) cases.push_back({model, backend});
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, EncoderParity, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.model + "_" + info.param.backend; });

// The reduced-precision modes against the float32 reference: embeddings within the bounds
// (relative error bf16 ≤ 2e-2, int8 ≤ 5e-2) and the zero-shot top-1 of every fixture image unchanged.
struct PrecisionCase {
    std::string model;
    std::string backend;
    kernels::Precision precision;
};

void PrintTo(const PrecisionCase& c, std::ostream* os) { *os << c.model << " " << kernels::to_string(c.precision) << " on " << c.backend; }

class PrecisionMode : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(PrecisionMode, StaysWithinTheBoundAndKeepsTop1) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto [model, backend_name, precision] = GetParam();
    const double bound = precision == kernels::Precision::int8 ? 5e-2 : 2e-2;
    kernels::Backend* backend = nullptr;
    try {
        backend = &kernels::backend_by_name(backend_name);
    } catch (const Error& e) {
        GTEST_SKIP() << e.what();
    }
    if (backend->name() != "reference" && !backend->native(precision)) {
        GTEST_SKIP() << "this CPU has no " << kernels::to_string(precision)
                     << " instructions (the reference backend's emulation is tested instead)";
    }
    const ModelConfig& config = model_config(model);
    const SafetensorsFile expected = read_safetensors(fixtures / model / "expected.safetensors");
    const TensorMap checkpoint = mclip::testing::generate_fixture_checkpoint(fixtures / model / "weights.json");
    const TensorMap folded = fold_checkpoint(config, WeightSource::from_map(checkpoint, model));
    const WeightSource weights = WeightSource::from_map(folded, model + " (folded)");
    const Tensor& input = expected.tensors.at("image.input");
    const Tensor& tokens = expected.tensors.at("text.tokens");
    const auto ids = mclip::testing::tokens_as_int32(tokens);

    GraphOptions options{backend, precision};
    std::optional<CalibratedBackend> calibrated;
    const Calibration calibration = precision == kernels::Precision::int8
                                        ? measure_input_ranges(config, weights, input, ids, "the fixture inputs")
                                        : Calibration{};
    if (precision == kernels::Precision::int8) {
        // Calibrated on the fixture images and prompts, the real inputs the fixtures hold.
        ASSERT_FALSE(calibration.input_ranges.empty());
        options.backend = &calibrated.emplace(*backend, calibration);
    }

    auto image_encoder = config.image.kind == ImageEncoderKind::mci ? make_mci_image_encoder(config, weights, options)
                                                                    : make_vit_image_encoder(config, weights, options);
    const Tensor images = image_encoder->encode(input);
    const double image_error = mclip::testing::max_relative_error(images, expected.tensors.at("image.embedding"));
    EXPECT_LE(image_error, bound) << model << " image";

    auto text_encoder = make_text_encoder(config, weights, options);
    const Tensor texts = text_encoder->encode(ids.data(), static_cast<int>(tokens.dim(0)));
    const double text_error = mclip::testing::max_relative_error(texts, expected.tensors.at("text.embedding"));
    EXPECT_LE(text_error, bound) << model << " text";
    if (calibrated) {
        // Every layer int8 can serve was calibrated and runs int8, or bf16 in a fused FFN where the
        // backend has one that is faster (kernels/amx/pointwise_ffn.h), or float32 for depthwise
        // ones where it has no int8 depthwise kernel (below AVX-512 with VNNI).
        EXPECT_EQ(calibrated->int8_layers() + calibrated->fused_layers() + calibrated->declined_layers(),
                  static_cast<int>(calibration.input_ranges.size()));
        if (backend_has(*backend, "AVX512-VNNI")) {
            EXPECT_EQ(calibrated->declined_layers(), 0) << "the int8 depthwise kernel takes the 7×7 layers";
        }
    }
    std::printf("%s %s (%s): image rel err %.3g, text rel err %.3g\n", model.c_str(), kernels::to_string(precision),
                backend->name().c_str(), image_error, text_error);

    const mclip::testing::Top1Agreement top1 =
        mclip::testing::compare_top1(images, texts, expected.tensors.at("image.embedding"), expected.tensors.at("text.embedding"), bound);
    EXPECT_EQ(top1.mismatches, 0) << top1.message;
    if (!top1.message.empty()) std::printf("top-1: %s\n", top1.message.c_str());
}

std::vector<PrecisionCase> precision_cases() {
    // Every variant natively; the reference backend's (slow) emulation on the smallest one.
    std::vector<PrecisionCase> cases;
    for (kernels::Precision precision : {kernels::Precision::bf16, kernels::Precision::int8}) {
        cases.push_back({"mobileclip_s0", "reference", precision});
        for (const char* model : {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"}) {
            cases.push_back({model, "onednn", precision});
        }
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(AllVariants, PrecisionMode, ::testing::ValuesIn(precision_cases()), [](const auto& info) {
    return info.param.model + "_" + kernels::to_string(info.param.precision) + "_" + info.param.backend;
});

}  // namespace
