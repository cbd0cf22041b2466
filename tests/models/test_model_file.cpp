// The model file path end to end: `mclip convert` (run by the make_fixture_models set-up) folds
// the training-form checkpoint into a GGUF file; loading it must reproduce the reference's
// reparameterized embeddings and logits. Also the CLI's embed/info and convert's refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "mclip/image.h"
#include "mclip/preprocess.h"
#include "io/gguf.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "mclip/error.h"
#include "models/fixture_weights.h"
#include "models/model.h"
#include "models/model_file.h"
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

// Rewrites a model file with edited metadata (same tensors, same storage types).
void rewrite_model_file(const fs::path& from, const fs::path& to,
                        const std::function<void(std::map<std::string, GgufValue>&)>& edit) {
    const GgufFile file = GgufFile::open(from);
    std::map<std::string, GgufValue> metadata = file.metadata();
    edit(metadata);
    GgufWriter writer;
    for (const auto& [key, value] : metadata) writer.set(key, value);
    for (const auto& t : file.tensors()) writer.add_tensor(t.name, file.tensor_f32(t.name), t.type);
    writer.write(to);
}

GgufValue u32_value(uint32_t v) { return {GgufType::u32, GgufType::u32, v}; }
GgufValue f32_array(std::vector<float> v) { return {GgufType::array, GgufType::f32, v}; }
GgufValue i32_array(std::vector<int32_t> v) { return {GgufType::array, GgufType::i32, v}; }
GgufValue string_value(const std::string& v) { return {GgufType::string, GgufType::u32, v}; }

// The model file, not the config table, decides how a model runs.
class ModelFileMetadata : public ::testing::Test {
protected:
    void SetUp() override {
        auto fixtures = mclip::testing::fixtures_dir();
        if (!fixtures) {
            if (mclip::testing::running_under_ci()) FAIL() << "reference fixtures not found; required under CI";
            GTEST_SKIP() << "reference fixtures not found (set MCLIP_FIXTURES to ../shared/fixtures)";
        }
        fixtures_ = *fixtures;
        dir_ = mclip::testing::make_temp_dir("mclip-metadata");
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    fs::path fixtures_, dir_;
};

TEST_F(ModelFileMetadata, FileIsFormatTwoWithEveryKey) {
    const GgufFile file = GgufFile::open(model_path("mobileclip_s0"));
    EXPECT_EQ(file.get_int("mclip.format_version"), 2);
    for (const char* key : {"mclip.image.mixer_kernel", "mclip.image.ffn_kernel", "mclip.image.downsample_kernel",
                            "mclip.image.cpe_kernel", "mclip.image.downsample_se", "mclip.image.se_divisor",
                            "mclip.image.conv_exp_se_divisor", "mclip.image.attention_stages", "mclip.image.attention_norm",
                            "mclip.image.norm_eps", "mclip.text.mixer_kernel", "mclip.preprocess.resize_size",
                            "mclip.preprocess.resize_mode", "mclip.preprocess.interpolation"}) {
        EXPECT_TRUE(file.has(key)) << key;
    }
    EXPECT_FALSE(file.has("mclip.image.input_size")) << "the input size is mclip.preprocess.size alone";
}

TEST_F(ModelFileMetadata, StoredPreprocessingIsApplied) {
    const fs::path edited = dir_ / "edited.gguf";
    const std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
    const std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
    rewrite_model_file(model_path("mobileclip_s0"), edited, [&](auto& metadata) {
        metadata["mclip.preprocess.mean"] = f32_array({mean.begin(), mean.end()});
        metadata["mclip.preprocess.std"] = f32_array({std.begin(), std.end()});
        metadata["mclip.preprocess.resize_size"] = u32_value(288);
        metadata["mclip.preprocess.interpolation"] = GgufValue{GgufType::string, GgufType::u32, "bicubic"};
    });
    const auto model = ClipModel::load(edited);
    const PreprocessParams& stored = model->config().preprocess;
    EXPECT_EQ(stored.mean, mean);
    EXPECT_EQ(stored.std, std);
    EXPECT_EQ(stored.resize_size, 288);
    EXPECT_EQ(stored.interpolation, Interpolation::bicubic);

    const fs::path image = fixtures_ / "images" / "rocket.jpg";
    const Tensor loaded = model->load_images({image});
    PreprocessParams expected_params;
    expected_params.size = 256;
    expected_params.resize_size = 288;
    expected_params.interpolation = Interpolation::bicubic;
    expected_params.mean = mean;
    expected_params.std = std;
    Tensor expected = Tensor::zeros_f32({1, 3, 256, 256});
    Preprocessor(expected_params).run(decode_image_file(image), expected.f32());
    ASSERT_EQ(loaded.shape(), expected.shape());
    EXPECT_EQ(std::memcmp(loaded.data(), expected.data(), expected.bytes()), 0);
    // And the table's preprocessing would have given something else.
    Tensor table = Tensor::zeros_f32({1, 3, 256, 256});
    Preprocessor(model_config("mobileclip_s0").preprocess).run(decode_image_file(image), table.f32());
    EXPECT_NE(std::memcmp(loaded.data(), table.data(), table.bytes()), 0);

    // The front ends preprocess through the public API: `mclip embed` of the photo equals the
    // encoder's embedding of the pixels preprocessed with the stored values (f32, one thread).
    const fs::path embedding = dir_ / "embedding.npy";
    const auto r = mclip::testing::run_command(mclip_cli() + " embed --precision f32 --threads 1 --model " +
                                               mclip::testing::shell_quote(edited.string()) + " --image " +
                                               mclip::testing::shell_quote(image.string()) + " --out " +
                                               mclip::testing::shell_quote(embedding.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ModelLoadOptions one_thread;
    one_thread.threads = 1;
    const Tensor encoded = ClipModel::load(edited, one_thread)->encode_images(expected);
    const Tensor written = read_npy(embedding);
    ASSERT_EQ(written.shape(), encoded.shape());
    EXPECT_EQ(std::memcmp(written.data(), encoded.data(), encoded.bytes()), 0);
}

TEST_F(ModelFileMetadata, FormatOneFileLoadsWithTheSameEmbeddings) {
    // What mclip wrote before format 2: fewer keys, the input size twice, "resize" for the
    // interpolation.
    const fs::path v1 = dir_ / "v1.gguf";
    rewrite_model_file(model_path("mobileclip_s0"), v1, [](auto& metadata) {
        for (const char* key : {"mclip.image.mixer_kernel", "mclip.image.ffn_kernel", "mclip.image.downsample_kernel",
                                "mclip.image.cpe_kernel", "mclip.image.downsample_se", "mclip.image.se_divisor",
                                "mclip.image.conv_exp_se_divisor", "mclip.image.attention_stages", "mclip.image.attention_norm",
                                "mclip.image.norm_eps", "mclip.text.mixer_kernel", "mclip.preprocess.resize_size",
                                "mclip.preprocess.resize_mode", "mclip.preprocess.interpolation"}) {
            ASSERT_EQ(metadata.erase(key), 1u) << key;
        }
        metadata["mclip.format_version"] = u32_value(1);
        metadata["mclip.image.input_size"] = u32_value(256);
        metadata["mclip.preprocess.resize"] = GgufValue{GgufType::string, GgufType::u32, "bilinear"};
    });
    const auto current = ClipModel::load(model_path("mobileclip_s0"));
    const auto old = ClipModel::load(v1);
    const ModelConfig& a = current->config();
    const ModelConfig& b = old->config();
    EXPECT_EQ(b.image.mci.depths, a.image.mci.depths);
    EXPECT_EQ(b.image.mci.downsample_se, a.image.mci.downsample_se);
    EXPECT_EQ(b.text.mixer_kernel, a.text.mixer_kernel);
    EXPECT_EQ(b.preprocess.resize_size, a.preprocess.resize_size);

    const SafetensorsFile expected = read_safetensors(fixtures_ / "mobileclip_s0" / "expected.safetensors");
    const Tensor& images = expected.tensors.at("image.input");
    const Tensor image_a = current->encode_images(images), image_b = old->encode_images(images);
    EXPECT_EQ(std::memcmp(image_a.data(), image_b.data(), image_a.bytes()), 0);
    const Tensor text_a = current->encode_texts({"a photo of a rocket"}), text_b = old->encode_texts({"a photo of a rocket"});
    EXPECT_EQ(std::memcmp(text_a.data(), text_b.data(), text_a.bytes()), 0);
    const fs::path photo = fixtures_ / "images" / "coffee.png";
    const Tensor pixels_a = current->load_images({photo}), pixels_b = old->load_images({photo});
    EXPECT_EQ(std::memcmp(pixels_a.data(), pixels_b.data(), pixels_a.bytes()), 0);
}

TEST_F(ModelFileMetadata, FormatTwoFileWithoutTheStageKeysLoadsAsFourStages) {
    // Format 2 files written before MobileCLIP2-S3/S4 lack the MCi attention keys; they mean one
    // BatchNorm attention stage.
    const fs::path earlier = dir_ / "earlier.gguf";
    rewrite_model_file(model_path("mobileclip_s0"), earlier, [](auto& metadata) {
        for (const char* key : {"mclip.image.attention_stages", "mclip.image.attention_norm", "mclip.image.norm_eps"}) {
            ASSERT_EQ(metadata.erase(key), 1u) << key;
        }
    });
    const auto current = ClipModel::load(model_path("mobileclip_s0"));
    const auto old = ClipModel::load(earlier);
    const MciConfig& m = old->config().image.mci;
    EXPECT_EQ(m.stages(), 4);
    EXPECT_EQ(m.attention_stages, 1);
    EXPECT_EQ(m.attention_norm, MciAttentionNorm::batch_norm);
    const SafetensorsFile expected = read_safetensors(fixtures_ / "mobileclip_s0" / "expected.safetensors");
    const Tensor& images = expected.tensors.at("image.input");
    const Tensor a = current->encode_images(images), b = old->encode_images(images);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.bytes()), 0);
}

// Loading `edited` fails with an Error whose message holds `message_part`.
void expect_load_refused(const fs::path& edited, const std::string& message_part) {
    try {
        ClipModel::load(edited);
        ADD_FAILURE() << "loaded a file it should refuse (" << message_part << ")";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(message_part), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(edited.string()), std::string::npos) << "the message names the file: " << e.what();
    }
}

TEST_F(ModelFileMetadata, DimensionsContradictingTheTensorsAreRefused) {
    const fs::path edited = dir_ / "contradicts.gguf";
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.text.width"] = u32_value(256); });
    expect_load_refused(edited, "tensor 'txt.token_embedding' has shape [49408, 512] but [49408, 256] was expected");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.image.mlp_ratio"] = u32_value(4); });
    // 3 × 64 channels stored where 4 × 64 are expected (fc1's weight or bias, whichever is read first).
    expect_load_refused(edited, "tensor 'img.network.0.0.ffn.fc1.");
}

TEST_F(ModelFileMetadata, MissingOrDamagedKeysAreRefused) {
    const fs::path edited = dir_ / "damaged.gguf";
    rewrite_model_file(model_path("mobileclip_s0"), edited, [](auto& metadata) { metadata.erase("mclip.preprocess.std"); });
    expect_load_refused(edited, "missing metadata key 'mclip.preprocess.std'");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.preprocess.std"] = f32_array({0.5f, 0.0f, 0.5f}); });
    expect_load_refused(edited, "mclip.preprocess.std");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.text.context_length"] = u32_value(4000000000u); });
    expect_load_refused(edited, "mclip.text.context_length is 4000000000, outside");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.image.depths"] = i32_array({2, 6, 10, 2, 2}); });
    expect_load_refused(edited, "mclip.image.widths is not an array of 5 to 5 integers");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.image.depths"] = i32_array({2, 2, 2, 2, 2, 2, 2, 2, 2}); });
    expect_load_refused(edited, "mclip.image.depths is not an array of 2 to 8 integers");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.image.attention_stages"] = u32_value(5); });
    expect_load_refused(edited, "mclip.image.attention_stages is 5, outside [1, 4]");
    rewrite_model_file(model_path("mobileclip_s0"), edited,
                       [](auto& metadata) { metadata["mclip.image.attention_norm"] = string_value("group_norm"); });
    expect_load_refused(edited, "unknown attention norm 'group_norm'");
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
