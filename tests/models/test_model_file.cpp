// The model file path end to end: `mclip convert` (run by the make_fixture_models set-up) folds
// the training-form checkpoint into a GGUF file; loading it must reproduce the reference's
// reparameterized embeddings and logits. Also the CLI's embed/info and convert's refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "io/safetensors.h"
#include "models/fixture_weights.h"
#include "models/model.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 1e-4;

fs::path model_path(const std::string& model) { return mclip::testing::test_models_dir() / (model + ".gguf"); }

std::string mclip_cli() { return mclip::testing::shell_quote(mclip::testing::mclip_executable().string()); }

class ModelFile : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFile, ConvertedFileMatchesReparameterizedReference) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string model = GetParam();
    const SafetensorsFile expected = read_safetensors(fixtures / model / "expected.safetensors");
    auto clip = ClipModel::load(model_path(model));
    EXPECT_EQ(clip->config().name, model);

    Tensor images = clip->encode_images(expected.tensors.at("image.input"));
    const auto image_errors = mclip::testing::relative_error_per_row(images, expected.tensors.at("image.embedding.reparameterized"));
    for (size_t i = 0; i < image_errors.size(); ++i) {
        EXPECT_LE(image_errors[i], kTolerance) << model << " image " << i;
        std::printf("%s image %zu (from GGUF) rel err %.3g\n", model.c_str(), i, image_errors[i]);
    }
    const Tensor& tokens = expected.tensors.at("text.tokens");
    const auto ids = mclip::testing::tokens_as_int32(tokens);
    Tensor texts = clip->encode_tokens(ids.data(), static_cast<int>(tokens.dim(0)));
    const auto text_errors = mclip::testing::relative_error_per_row(texts, expected.tensors.at("text.embedding.reparameterized"));
    for (size_t i = 0; i < text_errors.size(); ++i) {
        EXPECT_LE(text_errors[i], kTolerance) << model << " text " << i;
        std::printf("%s text %zu (from GGUF) rel err %.3g\n", model.c_str(), i, text_errors[i]);
    }

    // logits = min(exp(logit_scale), 100) · cos(image_i, text_j)
    normalize_rows(images);
    normalize_rows(texts);
    const Tensor& reference_logits = expected.tensors.at("logits");
    const int64_t n = images.dim(0), m = texts.dim(0), d = images.dim(1);
    Tensor logits = Tensor::zeros_f32({n, m});
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < m; ++j) {
            double dot = 0;
            for (int64_t k = 0; k < d; ++k) dot += images.f32()[i * d + k] * texts.f32()[j * d + k];
            logits.f32()[i * m + j] = static_cast<float>(clip->logit_scale() * dot);
        }
    }
    EXPECT_LE(mclip::testing::max_relative_error(logits, reference_logits), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ModelFile,
                         ::testing::Values("mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"));

TEST(EmbedCommand, ImageAndTokenNpyRoundTrip) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const fs::path dir = mclip::testing::make_temp_dir("mclip-embed");
    write_npy(dir / "images.npy", expected.tensors.at("image.input"));
    write_npy(dir / "tokens.npy", expected.tensors.at("text.tokens"));  // int64, as the fixtures store them

    // float32 explicitly: the default, auto, is bf16 on CPUs that have it.
    auto run = [&](const std::string& args) {
        return mclip::testing::run_command(mclip_cli() + " embed --precision f32 --model " +
                                           mclip::testing::shell_quote(model_path("mobileclip_s0").string()) + " " + args);
    };
    auto r = run("--image-npy " + (dir / "images.npy").string() + " --out " + (dir / "image_emb.npy").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Tensor image_emb = read_npy(dir / "image_emb.npy");
    EXPECT_EQ(image_emb.shape(), (Shape{3, 512}));
    EXPECT_LE(mclip::testing::max_relative_error(image_emb, expected.tensors.at("image.embedding.reparameterized")), kTolerance);

    r = run("--tokens-npy " + (dir / "tokens.npy").string() + " --out " + (dir / "text_emb.npy").string() + " --normalize");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Tensor text_emb = read_npy(dir / "text_emb.npy");
    ASSERT_EQ(text_emb.shape(), (Shape{5, 512}));
    Tensor reference = expected.tensors.at("text.embedding.reparameterized").clone();
    normalize_rows(reference);
    EXPECT_LE(mclip::testing::max_relative_error(text_emb, reference), kTolerance);
    double norm = 0;
    for (int k = 0; k < 512; ++k) norm += text_emb.f32()[k] * text_emb.f32()[k];
    EXPECT_NEAR(norm, 1.0, 1e-5);

    // int32 token ids work too; a wrong context length and float tokens are refused clearly.
    Tensor tokens32 = Tensor::zeros(DType::i32, {1, 77});
    static_cast<int32_t*>(tokens32.data())[0] = 49406;
    static_cast<int32_t*>(tokens32.data())[1] = 49407;
    write_npy(dir / "tokens32.npy", tokens32);
    r = run("--tokens-npy " + (dir / "tokens32.npy").string() + " --out " + (dir / "t32.npy").string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    write_npy(dir / "short.npy", Tensor::zeros(DType::i64, {2, 10}));
    r = run("--tokens-npy " + (dir / "short.npy").string() + " --out " + (dir / "bad.npy").string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("[M, 77]"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "bad.npy"));
    write_npy(dir / "wrong_size.npy", Tensor::zeros_f32({1, 3, 100, 100}));
    r = run("--image-npy " + (dir / "wrong_size.npy").string() + " --out " + (dir / "bad.npy").string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("256"), std::string::npos) << r.err;
    fs::remove_all(dir);
}

TEST(EmbedCommand, TextIsTokenizedWithTheEmbeddedVocabulary) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const auto prompts = nlohmann::json::parse(expected.metadata.at("prompts")).get<std::vector<std::string>>();
    const fs::path dir = mclip::testing::make_temp_dir("mclip-embed-text");
    std::string args;
    for (const auto& p : prompts) args += " --text " + mclip::testing::shell_quote(p);
    const auto r = mclip::testing::run_command(mclip_cli() + " embed --precision f32 --model " + model_path("mobileclip_s0").string() + args +
                                               " --out " + (dir / "text.npy").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Tensor text = read_npy(dir / "text.npy");
    ASSERT_EQ(text.dim(0), static_cast<int64_t>(prompts.size()));
    EXPECT_LE(mclip::testing::max_relative_error(text, expected.tensors.at("text.embedding.reparameterized")), kTolerance);
    fs::remove_all(dir);
}

TEST(InfoCommand, JsonDescribesTheFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto r = mclip::testing::run_command(mclip_cli() + " info --json " + model_path("mobileclip_s0").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["architecture"], "mobileclip_s0");
    EXPECT_EQ(doc["precision"], "f32");
    EXPECT_EQ(doc["tensor_count"].get<int>(), doc["tensor_types"]["F32"].get<int>());
    EXPECT_EQ(doc["file_size"].get<uint64_t>(), fs::file_size(model_path("mobileclip_s0")));
    EXPECT_EQ(doc["metadata"]["general.architecture"], "mobileclip");
    EXPECT_TRUE(doc["tokenizer"].get<bool>());
    EXPECT_EQ(doc["metadata"]["tokenizer.ggml.merges"]["length"], 48894);
    EXPECT_EQ(doc["metadata"]["mclip.content_sha256"].get<std::string>().size(), 64u);
    EXPECT_NEAR(doc["metadata"]["mclip.logit_scale"].get<double>(), std::log(1 / 0.07), 1e-6);
    // 11.4 M image + 42.4 M text parameters (BatchNorm folded away, logit_scale in metadata).
    EXPECT_NEAR(doc["parameters"].get<double>(), 53.78e6, 0.05e6);
}

class ConvertRefuses : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = mclip::testing::make_temp_dir("mclip-convert");
    }
    void TearDown() override { fs::remove_all(dir_); }

    mclip::testing::CommandResult convert(const fs::path& input, const std::string& arch = "mobileclip_s0") {
        return mclip::testing::run_command(mclip_cli() + " convert --arch " + arch + " --in " +
                                           mclip::testing::shell_quote(input.string()) + " --out " + (dir_ / "out.gguf").string());
    }
    void expect_refused(const mclip::testing::CommandResult& r, const std::string& message_part) {
        EXPECT_NE(r.exit_code, 0);
        EXPECT_NE(r.err.find(message_part), std::string::npos) << "stderr: " << r.err;
        EXPECT_FALSE(fs::exists(dir_ / "out.gguf")) << "a partial output file was left behind";
        for (const auto& entry : fs::directory_iterator(dir_)) {
            EXPECT_EQ(entry.path().filename().string().find(".out.gguf.tmp"), std::string::npos) << "temporary file left";
        }
    }
    TensorMap fixture_checkpoint(const fs::path& fixtures) {
        return mclip::testing::generate_fixture_checkpoint(fixtures / "mobileclip_s0" / "weights.json");
    }
    fs::path dir_;
};

TEST_F(ConvertRefuses, TruncatedCheckpoint) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    write_safetensors(dir_ / "full.safetensors", fixture_checkpoint(fixtures));
    fs::resize_file(dir_ / "full.safetensors", fs::file_size(dir_ / "full.safetensors") / 2);
    expect_refused(convert(dir_ / "full.safetensors"), "truncated");
}

TEST_F(ConvertRefuses, FileThatIsNotACheckpoint) {
    std::ofstream(dir_ / "notes.safetensors") << "these are not weights\n";
    expect_refused(convert(dir_ / "notes.safetensors"), "notes.safetensors");
}

TEST_F(ConvertRefuses, MissingTensorIsNamed) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    TensorMap checkpoint = fixture_checkpoint(fixtures);
    checkpoint.erase("image_encoder.model.network.4.3.convffn.fc1.bias");
    write_safetensors(dir_ / "missing.safetensors", checkpoint);
    expect_refused(convert(dir_ / "missing.safetensors"), "missing tensor 'image_encoder.model.network.4.3.convffn.fc1.bias'");
}

TEST_F(ConvertRefuses, MisshapenTensorIsNamed) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    TensorMap checkpoint = fixture_checkpoint(fixtures);
    checkpoint["text_encoder.projection_layer"] = Tensor::zeros_f32({512, 256});
    write_safetensors(dir_ / "misshapen.safetensors", checkpoint);
    expect_refused(convert(dir_ / "misshapen.safetensors"), "'text_encoder.projection_layer' has shape [512, 256]");
}

TEST_F(ConvertRefuses, WrongArchitecture) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    write_safetensors(dir_ / "s0.safetensors", fixture_checkpoint(fixtures));
    auto r = convert(dir_ / "s0.safetensors", "mobileclip_s2");
    expect_refused(r, "is the architecture right?");
    EXPECT_NE(r.err.find("image_encoder.model.patch_embed.0"), std::string::npos) << r.err;
    r = convert(dir_ / "s0.safetensors", "mobileclip_s1");  // same widths, more blocks: names a missing block
    expect_refused(r, "missing tensor 'image_encoder.model.network.0.2");
    r = convert(dir_ / "s0.safetensors", "mobileclip_s9");
    expect_refused(r, "unknown architecture 'mobileclip_s9'");
}

TEST_F(ConvertRefuses, UnexpectedExtraTensor) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    TensorMap checkpoint = fixture_checkpoint(fixtures);
    checkpoint["image_encoder.model.network.0.7.layer_scale"] = Tensor::zeros_f32({64, 1, 1});
    write_safetensors(dir_ / "extra.safetensors", checkpoint);
    expect_refused(convert(dir_ / "extra.safetensors"), "image_encoder.model.network.0.7.layer_scale");
}

}  // namespace
