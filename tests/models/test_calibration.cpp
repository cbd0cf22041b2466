// int8 calibration: which layers it measures, how it is stored in the model file, and the path
// from `mclip convert --calibrate` to int8 embeddings and classification.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/calibration.h"
#include "models/fixture_weights.h"
#include "models/fold.h"
#include "models/model.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;
namespace fs = std::filesystem;

namespace {

std::string q(const std::string& text) { return mclip::testing::shell_quote(text); }
std::string cli() { return q(mclip::testing::mclip_executable().string()); }

bool int8_is_native() { return kernels::default_backend().native(kernels::Precision::int8); }

TEST(Calibration, MeasuresTheLayersInt8ServesAndNoOthers) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const ModelConfig& config = model_config("mobileclip_s0");
    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const TensorMap checkpoint = mclip::testing::generate_fixture_checkpoint(fixtures / "mobileclip_s0" / "weights.json");
    const TensorMap folded = fold_checkpoint(config, WeightSource::from_map(checkpoint, "s0"));
    const auto ids = mclip::testing::tokens_as_int32(expected.tensors.at("text.tokens"));
    const Calibration c =
        measure_input_ranges(config, WeightSource::from_map(folded, "s0"), expected.tensors.at("image.input"), ids, "fixtures");
    EXPECT_EQ(c.source, "fixtures");
    // Residual-branch projections of both encoders are measured...
    for (const char* layer : {"img.network.0.0.ffn.fc1", "img.network.4.9.ffn.fc2", "img.network.7.1.qkv", "img.network.7.1.proj",
                              "txt.transformer.0.ffn.fc1", "txt.transformer.2.pre_norm_mha.1.out_proj", "txt.transformer.4.pre_norm_ffn.4"}) {
        ASSERT_TRUE(c.input_ranges.count(layer)) << layer;
        EXPECT_TRUE(c.input_ranges.at(layer) > 0 && std::isfinite(c.input_ranges.at(layer))) << layer;
    }
    // ...so are the image ConvFFNs' 7×7 depthwise layers...
    for (const char* layer : {"img.network.0.0.ffn.dw", "img.network.7.1.ffn.dw"}) EXPECT_TRUE(c.input_ranges.count(layer)) << layer;
    // ...the main path (stem, downsampling, the RepCPE: network.6), the strided and the small
    // depthwise convolutions (the PatchEmbeds', the 3×3 mixers, the text's 1×11) are not.
    for (const auto& [name, range] : c.input_ranges) {
        for (const char* excluded : {"patch_embed", ".proj.", "network.6", "txt.transformer.0.ffn.dw", "token_mixer", "conv_exp"}) {
            EXPECT_EQ(name.find(excluded), std::string::npos) << name;
        }
    }
    // S0: 2 + 6 + 10 + 2 ConvFFNs (dw, fc1, fc2), 2 attention blocks (qkv, proj), and in the text
    // encoder 2 ConvFFNs (fc1, fc2) and 4 transformer layers (4 projections each).
    EXPECT_EQ(c.input_ranges.size(), 20u * 3 + 2 * 2 + 2 * 2 + 4 * 4);
    // Each layer's input also per channel (for the smoothing factors): the layer's largest is theirs.
    ASSERT_EQ(c.channel_ranges.size(), c.input_ranges.size());
    EXPECT_EQ(c.channel_ranges.at("img.network.0.0.ffn.fc1").size(), 64u);
    EXPECT_EQ(c.channel_ranges.at("img.network.0.0.ffn.fc2").size(), 3u * 64);
    EXPECT_EQ(c.channel_ranges.at("txt.transformer.2.pre_norm_mha.1.out_proj").size(), 512u);
    EXPECT_EQ(c.channel_ranges.at("img.network.4.9.ffn.dw").size(), 256u);
    for (const auto& [name, channels] : c.channel_ranges) {
        EXPECT_EQ(*std::max_element(channels.begin(), channels.end()), c.input_ranges.at(name)) << name;
    }
}

TEST(Calibration, SmoothingBalancesEachChannelAgainstItsWeights) {
    // s_c = sqrt(max|x_c| / max|W[:, c]|); channels without input or weights keep 1.
    const std::vector<float> values{0.5f, -2.0f, 0.0f, 1.0f,  //
                                    -0.25f, 1.0f, 0.0f, 0.0f};
    const Tensor weight = Tensor::from_f32({2, 4, 1, 1}, values);
    const std::vector<float> factors = smoothing_factors({8.0f, 2.0f, 3.0f, 0.0f}, weight);
    ASSERT_EQ(factors.size(), 4u);
    EXPECT_FLOAT_EQ(factors[0], 4.0f);  // sqrt(8 / 0.5)
    EXPECT_FLOAT_EQ(factors[1], 1.0f);  // sqrt(2 / 2)
    EXPECT_FLOAT_EQ(factors[2], 1.0f);  // all-zero weights
    EXPECT_FLOAT_EQ(factors[3], 1.0f);  // an input that was always 0
    EXPECT_THROW(smoothing_factors({1.0f, 2.0f}, weight), Error);
}

// A depthwise layer's factors bring every channel's range to the largest, so that the smoothed
// input's one step is a step per channel; a channel never seen nonzero keeps 1.
TEST(Calibration, DepthwiseFactorsGiveEachChannelItsOwnStep) {
    const std::vector<float> factors = equalizing_factors({1.0f, 4.0f, 0.0f, 2.0f}, 4);
    EXPECT_EQ(factors, (std::vector<float>{0.25f, 1.0f, 1.0f, 0.5f}));
    EXPECT_THROW(equalizing_factors({1.0f, 4.0f}, 4), Error) << "ranges for another channel count";
    // Through CalibratedBackend: a 7×7 int8 depthwise layer gets them, and the largest range;
    // the layer it builds computes in int8 and is counted so.
    Calibration calibration;
    calibration.channel_ranges = {{"blk.dw", {1.0f, 4.0f, 0.0f, 2.0f}}};
    calibration.input_ranges = {{"blk.dw", 4.0f}};
    CalibratedBackend calibrated(kernels::reference_backend(), calibration);
    kernels::ConvDesc d;
    d.in_channels = d.out_channels = d.groups = 4;
    d.kernel_h = d.kernel_w = 7;
    d.pad_h = d.pad_w = 3;
    d.precision = kernels::Precision::int8;
    d.name = "blk.dw";
    const auto conv = calibrated.make_conv2d(d, Tensor::zeros_f32({4, 1, 7, 7}), Tensor::zeros_f32({4}));
    EXPECT_EQ(conv->desc().input_smoothing, factors);
    EXPECT_FLOAT_EQ(conv->desc().input_range, 4.0f);
    EXPECT_EQ(calibrated.int8_layers(), 1);
}

// A fused FFN of an int8 model gets its two products' calibration, as their convolutions would:
// the smoothing factors of fc1's input against W1 and of the hidden layer against W2, and the
// ranges of the smoothed inputs. (A base backend that records what it is asked for.)
TEST(Calibration, ReachesTheTwoProductsOfAFusedFfn) {
    class Recording final : public kernels::Backend {
    public:
        std::string name() const override { return "recording"; }
        bool native(kernels::Precision) const override { return true; }
        std::unique_ptr<kernels::Conv2d> make_conv2d(const kernels::ConvDesc& d, const Tensor& w, const Tensor& b) override {
            return kernels::reference_backend().make_conv2d(d, w, b);
        }
        std::unique_ptr<kernels::Linear> make_linear(const kernels::LinearDesc& d, const Tensor& w, const Tensor& b) override {
            return kernels::reference_backend().make_linear(d, w, b);
        }
        std::unique_ptr<kernels::Attention> make_attention(const kernels::AttentionDesc& d) override {
            return kernels::reference_backend().make_attention(d);
        }
        std::unique_ptr<kernels::PointwiseFfn> make_pointwise_ffn(const kernels::PointwiseFfnDesc& d, const Tensor&, const Tensor&, const Tensor&,
                                                                  const Tensor&) override {
            asked.push_back(d);
            return nullptr;
        }
        std::vector<kernels::PointwiseFfnDesc> asked;
    };
    constexpr int channels = 16, hidden = 48;
    std::vector<float> w1_values(hidden * channels), w2_values(channels * hidden);
    for (size_t i = 0; i < w1_values.size(); ++i) w1_values[i] = std::sin(0.37f * static_cast<float>(i));
    for (size_t i = 0; i < w2_values.size(); ++i) w2_values[i] = std::cos(0.23f * static_cast<float>(i));
    const Tensor w1 = Tensor::from_f32({hidden, channels, 1, 1}, w1_values), w2 = Tensor::from_f32({channels, hidden, 1, 1}, w2_values);
    const Tensor b1 = Tensor::zeros_f32({hidden}), b2 = Tensor::zeros_f32({channels});
    Calibration calibration;
    std::vector<float> input_channels(channels), hidden_channels(hidden);
    for (int c = 0; c < channels; ++c) input_channels[c] = 0.5f + static_cast<float>(c);
    for (int c = 0; c < hidden; ++c) hidden_channels[c] = 0.25f + 0.1f * static_cast<float>(c % 7);
    calibration.channel_ranges = {{"blk.ffn.fc1", input_channels}, {"blk.ffn.fc2", hidden_channels}};
    calibration.input_ranges = {{"blk.ffn.fc1", *std::max_element(input_channels.begin(), input_channels.end())},
                                {"blk.ffn.fc2", *std::max_element(hidden_channels.begin(), hidden_channels.end())}};
    Recording base;
    CalibratedBackend calibrated(base, calibration);
    kernels::PointwiseFfnDesc d;
    d.channels = channels;
    d.hidden = hidden;
    d.precision = kernels::Precision::int8;
    d.fc1_name = "blk.ffn.fc1";
    d.fc2_name = "blk.ffn.fc2";
    EXPECT_EQ(calibrated.make_pointwise_ffn(d, w1, b1, w2, b2), nullptr);
    d.precision = kernels::Precision::bf16;
    EXPECT_EQ(calibrated.make_pointwise_ffn(d, w1, b1, w2, b2), nullptr);
    ASSERT_EQ(base.asked.size(), 2u);

    const auto smoothed_range = [](const std::vector<float>& ranges, const std::vector<float>& factors) {
        float range = 0;
        for (size_t c = 0; c < ranges.size(); ++c) range = std::max(range, ranges[c] / factors[c]);
        return range;
    };
    const kernels::PointwiseFfnDesc& int8 = base.asked[0];
    const std::vector<float> input_factors = smoothing_factors(input_channels, w1), hidden_factors = smoothing_factors(hidden_channels, w2);
    EXPECT_EQ(int8.input_smoothing, input_factors);
    EXPECT_EQ(int8.hidden_smoothing, hidden_factors);
    EXPECT_FLOAT_EQ(int8.input_range, smoothed_range(input_channels, input_factors));
    EXPECT_FLOAT_EQ(int8.hidden_range, smoothed_range(hidden_channels, hidden_factors));
    EXPECT_NE(int8.input_smoothing, std::vector<float>(channels, 1.0f)) << "the example should smooth something";
    // A bf16 FFN gets no int8 calibration.
    const kernels::PointwiseFfnDesc& bf16 = base.asked[1];
    EXPECT_EQ(bf16.input_range, 0.0f);
    EXPECT_EQ(bf16.hidden_range, 0.0f);
    EXPECT_TRUE(bf16.input_smoothing.empty() && bf16.hidden_smoothing.empty());
}

class CalibrationFile : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-calibration"); }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(CalibrationFile, RoundTripsThroughGguf) {
    const Calibration original{{{"img.a", 0.25f}, {"txt.b", 17.5f}, {"txt.c", 3.0f}},
                               {{"img.a", {0.25f, 0.125f, 0.0f}}, {"txt.b", {17.5f, 1.0f}}},
                               "2 images, 3 prompts"};
    GgufWriter writer;
    write_calibration(writer, original);
    writer.write(dir_ / "c.gguf");
    const GgufFile file = GgufFile::open(dir_ / "c.gguf");
    const std::optional<Calibration> read = read_calibration(file);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->input_ranges, original.input_ranges);
    EXPECT_EQ(read->channel_ranges, original.channel_ranges);
    EXPECT_EQ(read->source, original.source);

    GgufWriter none;
    none.set_string("general.architecture", "mobileclip");
    none.write(dir_ / "none.gguf");
    EXPECT_FALSE(read_calibration(GgufFile::open(dir_ / "none.gguf")));
}

TEST_F(CalibrationFile, RefusesInconsistentEntries) {
    // read_calibration of a file whose calibration keys `fill` writes fails, naming `message`.
    const auto refused_file = [&](const std::function<void(GgufWriter&)>& fill, const std::string& message) {
        GgufWriter writer;
        fill(writer);
        writer.write(dir_ / "bad.gguf");
        try {
            read_calibration(GgufFile::open(dir_ / "bad.gguf"));
            ADD_FAILURE() << "accepted: " << message;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        }
    };
    const auto refused = [&](const std::vector<std::string>& layers, const std::vector<float>& ranges, const std::string& message) {
        refused_file(
            [&](GgufWriter& writer) {
                writer.set_string_array("mclip.calibration.layers", layers);
                writer.set_f32_array("mclip.calibration.input_ranges", ranges);
            },
            message);
    };
    refused({"a", "b"}, {1.0f}, "has 2 entries but");
    refused({"a"}, {-1.0f}, "input range of a");
    refused({"a"}, {NAN}, "input range of a");

    const auto refused_channels = [&](const std::vector<int32_t>& counts, const std::vector<float>& ranges, const std::string& message) {
        refused_file(
            [&](GgufWriter& writer) {
                writer.set_string_array("mclip.calibration.layers", {"a", "b"});
                writer.set_f32_array("mclip.calibration.input_ranges", {1.0f, 2.0f});
                writer.set_i32_array("mclip.calibration.channel_counts", counts);
                writer.set_f32_array("mclip.calibration.channel_ranges", ranges);
            },
            message);
    };
    refused_channels({2}, {1.0f, 0.5f}, "channel_counts has 1 entries for 2 layers");
    refused_channels({2, 2}, {1.0f, 0.5f, 2.0f}, "shorter than");
    refused_channels({1, 1}, {1.0f, 0.5f, 2.0f}, "longer than");
    refused_channels({-1, 1}, {1.0f}, "shorter than");
    refused_channels({1, 1}, {1.0f, -2.0f}, "channel range of b");
    refused_channels({1, 1}, {1.0f, INFINITY}, "channel range of b");
}

TEST(CalibrationModel, Int8NeedsACalibrationAndAutoPrefersIt) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    if (!int8_is_native()) GTEST_SKIP() << "this CPU runs no int8 (the reference backend's emulation is tested in test_encoders)";
    const fs::path plain = mclip::testing::test_models_dir() / "mobileclip_s0.gguf";
    ModelLoadOptions int8;
    int8.precision = kernels::Precision::int8;
    try {
        ClipModel::load(plain, int8);
        ADD_FAILURE() << "an uncalibrated model loaded in int8";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--calibrate"), std::string::npos) << e.what();
    }
    ModelLoadOptions fastest;
    fastest.fastest_precision = true;
    EXPECT_EQ(ClipModel::load(plain, fastest)->precision(), kernels::fastest_precision(kernels::default_backend()));
    const Calibration calibration{{{"img.network.0.0.ffn.fc1", 1.0f}}, {}, "test"};
    fastest.calibration = &calibration;
    EXPECT_EQ(ClipModel::load(plain, fastest)->precision(), kernels::Precision::int8);
}

// Converted with --calibrate on the fixture images, the file alone gives int8 embeddings within
// the bound and the same classification as float32, through the library and the CLI.
TEST_F(CalibrationFile, ConvertCalibratesAndInt8ClassifiesLikeFloat32) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    if (!int8_is_native()) GTEST_SKIP() << "this CPU runs no int8";
    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const auto images = nlohmann::json::parse(expected.metadata.at("images")).get<std::vector<std::string>>();
    const auto prompts = nlohmann::json::parse(expected.metadata.at("prompts")).get<std::vector<std::string>>();
    std::string image_args;
    for (const auto& image : images) image_args += " " + q((fixtures / "images" / image).string());
    const fs::path out = dir_ / "s0-calibrated.gguf";
    const auto converted = mclip::testing::run_command(
        cli() + " convert --arch mobileclip_s0 --in " + q((mclip::testing::test_models_dir() / "mobileclip_s0.safetensors").string()) +
        " --out " + q(out.string()) + " --vocab " + q((fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz").string()) +
        " --calibrate" + image_args);
    ASSERT_EQ(converted.exit_code, 0) << converted.err;
    const auto info = nlohmann::json::parse(mclip::testing::run_command(cli() + " info --json " + q(out.string())).out);
    EXPECT_EQ(info["metadata"]["mclip.calibration.source"].get<std::string>().find(std::to_string(images.size()) + " images, "), 0u);
    EXPECT_EQ(info["int8_calibration"]["layers"], 20 * 3 + 2 * 2 + 2 * 2 + 4 * 4);
    const auto plain_info = mclip::testing::run_command(cli() + " info --json " +
                                                        q((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string()));
    EXPECT_TRUE(nlohmann::json::parse(plain_info.out)["int8_calibration"].is_null());

    ModelLoadOptions int8;
    int8.precision = kernels::Precision::int8;
    const auto model = ClipModel::load(out, int8);
    const auto ids = mclip::testing::tokens_as_int32(expected.tensors.at("text.tokens"));
    const double image_error =
        mclip::testing::max_relative_error(model->encode_images(expected.tensors.at("image.input")), expected.tensors.at("image.embedding"));
    const double text_error = mclip::testing::max_relative_error(
        model->encode_tokens(ids.data(), static_cast<int>(ids.size() / 77)), expected.tensors.at("text.embedding"));
    std::printf("calibrated file, int8: image rel err %.3g, text rel err %.3g\n", image_error, text_error);
    EXPECT_LE(image_error, 5e-2);
    EXPECT_LE(text_error, 5e-2);

    std::string label_args = " --no-cache --no-exif --template '{}' --json";
    for (const auto& p : prompts) label_args += " --label " + q(p);
    const auto classify = [&](const std::string& precision) {
        const auto r = mclip::testing::run_command(cli() + " classify --model " + q(out.string()) + " --precision " + precision +
                                                   label_args + image_args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return nlohmann::json::parse(r.out);
    };
    const auto f32 = classify("f32"), automatic = classify("auto");
    EXPECT_EQ(automatic["precision"], "int8") << "auto picks int8 for a calibrated file";
    ASSERT_EQ(automatic["results"].size(), images.size());
    for (size_t i = 0; i < images.size(); ++i) {
        EXPECT_EQ(automatic["results"][i]["top_k"][0]["label"], f32["results"][i]["top_k"][0]["label"]) << images[i];
        EXPECT_NEAR(automatic["results"][i]["top_k"][0]["probability"].get<double>(),
                    f32["results"][i]["top_k"][0]["probability"].get<double>(), 5e-2)
            << images[i];
    }
}

}  // namespace
