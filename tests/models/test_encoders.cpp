// Parity of the folded engine with the reference PyTorch model, block by block, for every
// variant and both kernel backends' shared graph: the training-form checkpoint is rebuilt from
// weights.json, folded in memory, and run on the fixture inputs.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "models/encoder.h"
#include "models/fixture_weights.h"
#include "models/fold.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;

namespace {

constexpr double kTolerance = 1e-4;

class EncoderParity : public ::testing::TestWithParam<std::string> {};

std::vector<int32_t> tokens_as_int32(const Tensor& tokens) {
    std::vector<int32_t> ids(tokens.elements());
    for (int64_t i = 0; i < tokens.elements(); ++i) ids[i] = static_cast<int32_t>(static_cast<const int64_t*>(tokens.data())[i]);
    return ids;
}

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
    const std::string model = GetParam();
    const ModelConfig& config = model_config(model);
    const SafetensorsFile expected = read_safetensors(fixtures / model / "expected.safetensors");
    const TensorMap checkpoint = mclip::testing::generate_fixture_checkpoint(fixtures / model / "weights.json");
    const WeightSource source = WeightSource::from_map(checkpoint, model);
    const TensorMap folded = fold_checkpoint(config, source);
    const WeightSource weights = WeightSource::from_map(folded, model + " (folded)");
    kernels::Backend& backend = kernels::default_backend();

    IntermediateCheck image_check{expected, {}};
    auto image_encoder = config.image.kind == ImageEncoderKind::mci ? make_mci_image_encoder(config, weights, backend)
                                                                    : make_vit_image_encoder(config, weights, backend);
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
    auto text_encoder = make_text_encoder(config, weights, backend);
    const Tensor& tokens = expected.tensors.at("text.tokens");
    const auto ids = tokens_as_int32(tokens);
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

INSTANTIATE_TEST_SUITE_P(AllVariants, EncoderParity,
                         ::testing::Values("mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"));

}  // namespace
