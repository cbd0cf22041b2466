// `mclip classify` end to end with the S0 model converted from the fixture weights: reference
// logits reproduced, bf16 against float32, template ensembles as computed by hand from
// `mclip embed`, the text embedding cache, per-file failures and refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;
namespace fs = std::filesystem;

namespace {

std::string cli() { return mclip::testing::shell_quote(mclip::testing::mclip_executable().string()); }
std::string q(const std::string& s) { return mclip::testing::shell_quote(s); }
fs::path s0_model() { return mclip::testing::test_models_dir() / "mobileclip_s0.gguf"; }

bool cpu_has_bf16() { return kernels::default_backend().native(kernels::Precision::bf16); }

// Options classifying every fixture image against every fixture prompt, taken verbatim (one has a
// comma, one is empty), with every score reported.
std::string fixture_prompts_and_images(const fs::path& fixtures, const SafetensorsFile& expected) {
    const auto prompts = nlohmann::json::parse(expected.metadata.at("prompts")).get<std::vector<std::string>>();
    const auto images = nlohmann::json::parse(expected.metadata.at("images")).get<std::vector<std::string>>();
    std::string args = "--template '{}' --no-exif --top-k " + std::to_string(prompts.size());
    for (const auto& p : prompts) args += " --label " + q(p);
    for (const auto& image : images) args += " " + q((fixtures / "images" / image).string());
    return args;
}

class ClassifyCommand : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-classify"); }
    void TearDown() override { fs::remove_all(dir_); }

    mclip::testing::CommandResult classify(const std::string& args) {
        return mclip::testing::run_command(cli() + " classify --model " + q(s0_model().string()) + " --cache-dir " +
                                           q((dir_ / "cache").string()) + " " + args);
    }
    // With -v, which logs whether the text embeddings were computed or read from the cache.
    mclip::testing::CommandResult classify_verbose(const std::string& args) {
        return mclip::testing::run_command(cli() + " -v classify --model " + q(s0_model().string()) + " --cache-dir " +
                                           q((dir_ / "cache").string()) + " " + args);
    }
    std::vector<fs::path> cache_entries() const {
        std::vector<fs::path> entries;
        for (const auto& e : fs::directory_iterator(dir_ / "cache")) entries.push_back(e.path());
        return entries;
    }
    fs::path dir_;
};

TEST_F(ClassifyCommand, ReproducesReferenceLogitsAndTheirSoftmax) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const auto prompts = nlohmann::json::parse(expected.metadata.at("prompts")).get<std::vector<std::string>>();
    const auto images = nlohmann::json::parse(expected.metadata.at("images")).get<std::vector<std::string>>();
    // float32 explicitly: the default, auto, is bf16 on CPUs that have it.
    const auto r = classify("--precision f32 --json " + fixture_prompts_and_images(fixtures, expected));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["precision"], "f32");
    const Tensor& reference = expected.tensors.at("logits");
    ASSERT_EQ(doc["results"].size(), images.size());
    Tensor ours = Tensor::zeros_f32({static_cast<int64_t>(images.size()), static_cast<int64_t>(prompts.size())});
    for (size_t i = 0; i < images.size(); ++i) {
        const auto& result = doc["results"][i];
        EXPECT_EQ(fs::path(result["image"].get<std::string>()).filename(), images[i]);
        ASSERT_EQ(result["top_k"].size(), prompts.size());
        std::map<std::string, std::pair<double, double>> by_label;
        for (const auto& s : result["top_k"]) by_label[s["label"]] = {s["logit"].get<double>(), s["probability"].get<double>()};
        double sum = 0;
        for (size_t j = 0; j < prompts.size(); ++j) sum += std::exp(reference.f32()[i * prompts.size() + j]);
        for (size_t j = 0; j < prompts.size(); ++j) {
            const auto [logit, probability] = by_label.at(prompts[j]);
            ours.f32()[i * prompts.size() + j] = static_cast<float>(logit);
            EXPECT_NEAR(probability, std::exp(reference.f32()[i * prompts.size() + j]) / sum, 1e-4) << images[i] << " / " << prompts[j];
        }
    }
    const double error = mclip::testing::max_relative_error(ours, reference);
    std::printf("classify logits rel err %.3g\n", error);
    EXPECT_LE(error, 1e-4);
}

// bf16 rounds the embeddings by up to 2e-2 (relative); the answers must not change.
TEST_F(ClassifyCommand, Bf16IsTheDefaultWhereNativeAndKeepsTheFloat32Answers) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no bf16 instructions (AVX512-BF16 or AMX)";
    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const std::string args = "--json --no-cache " + fixture_prompts_and_images(fixtures, expected);
    const auto f32 = classify("--precision f32 " + args);
    ASSERT_EQ(f32.exit_code, 0) << f32.err;
    const auto bf16 = classify("--precision bf16 " + args);
    ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
    const auto by_default = classify(args);
    ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
    const auto f32_doc = nlohmann::json::parse(f32.out);
    const auto bf16_doc = nlohmann::json::parse(bf16.out);
    EXPECT_EQ(f32_doc["precision"], "f32");
    EXPECT_EQ(bf16_doc["precision"], "bf16");
    EXPECT_EQ(nlohmann::json::parse(by_default.out)["precision"], "bf16");

    ASSERT_EQ(f32_doc["results"].size(), 3u);
    ASSERT_EQ(bf16_doc["results"].size(), f32_doc["results"].size());
    for (size_t i = 0; i < f32_doc["results"].size(); ++i) {
        const auto& ours = bf16_doc["results"][i];
        const auto& theirs = f32_doc["results"][i];
        const std::string image = fs::path(theirs["image"].get<std::string>()).filename();
        EXPECT_EQ(ours["image"], theirs["image"]);
        EXPECT_EQ(ours["top_k"][0]["label"], theirs["top_k"][0]["label"]) << image;
        std::map<std::string, double> f32_probability;
        for (const auto& s : theirs["top_k"]) f32_probability[s["label"]] = s["probability"].get<double>();
        ASSERT_EQ(ours["top_k"].size(), f32_probability.size()) << image;
        for (const auto& s : ours["top_k"]) {
            EXPECT_NEAR(s["probability"].get<double>(), f32_probability.at(s["label"]), 2e-2) << image << " / " << s["label"];
        }
    }
}

TEST_F(ClassifyCommand, TemplateEnsembleEqualsTheOneComputedByHand) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::vector<std::string> labels = {"cat", "cup of coffee"};
    const std::vector<std::string> templates = {"a photo of a {}.", "a blurry picture of the {}", "{} in the wild"};
    const fs::path image = fixtures / "images" / "chelsea.png";

    // By hand: every prompt through `mclip embed --text`, normalized, averaged, normalized.
    std::string texts;
    for (const auto& label : labels) {
        for (const auto& t : templates) texts += " --text " + q(t.substr(0, t.find("{}")) + label + t.substr(t.find("{}") + 2));
    }
    auto r = mclip::testing::run_command(cli() + " embed --model " + q(s0_model().string()) + texts + " --normalize --out " +
                                         q((dir_ / "prompts.npy").string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = mclip::testing::run_command(cli() + " embed --model " + q(s0_model().string()) + " --image " + q(image.string()) +
                                    " --normalize --out " + q((dir_ / "image.npy").string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Tensor prompts = read_npy(dir_ / "prompts.npy");
    const Tensor image_embedding = read_npy(dir_ / "image.npy");
    const int64_t d = prompts.dim(1);
    std::vector<double> expected_cosines;
    for (size_t c = 0; c < labels.size(); ++c) {
        std::vector<double> mean(d, 0.0);
        for (size_t t = 0; t < templates.size(); ++t) {
            for (int64_t k = 0; k < d; ++k) mean[k] += prompts.f32()[(c * templates.size() + t) * d + k] / templates.size();
        }
        double norm = 0, dot = 0;
        for (int64_t k = 0; k < d; ++k) norm += mean[k] * mean[k];
        for (int64_t k = 0; k < d; ++k) dot += mean[k] / std::sqrt(norm) * image_embedding.f32()[k];
        expected_cosines.push_back(dot);
    }

    std::string args = "--labels " + q("cat,cup of coffee") + " --json --top-k 2";
    for (const auto& t : templates) args += " --template " + q(t);
    r = classify(args + " " + q(image.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = nlohmann::json::parse(r.out);
    const double scale = doc["logit_scale"].get<double>();
    EXPECT_NEAR(scale, 1 / 0.07, 1e-3);
    for (const auto& s : doc["results"][0]["top_k"]) {
        const size_t c = s["label"] == "cat" ? 0 : 1;
        EXPECT_NEAR(s["logit"].get<double>(), scale * expected_cosines[c], 1e-4) << s["label"];
    }
}

TEST_F(ClassifyCommand, SecondRunReadsTheCacheAndACorruptEntryIsRebuilt) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string args = "-k 2 --jsonl --labels 'person,forklift,car,computer' " + q((fixtures / "images" / "coffee.png").string());
    const auto first = classify_verbose(args);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_NE(first.err.find("computed"), std::string::npos) << first.err;
    const auto second = classify_verbose(args);
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_NE(second.err.find("read from cache"), std::string::npos) << second.err;
    EXPECT_EQ(first.out, second.out);

    // Flip a byte in the payload of the only entry: detected, reported, rebuilt, same answer.
    const std::vector<fs::path> entries = cache_entries();
    ASSERT_EQ(entries.size(), 1u);
    {
        // Inverted, not overwritten with a constant the byte may already hold.
        std::fstream f(entries[0], std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(100);
        const char byte = static_cast<char>(f.get());
        f.seekp(100);
        f.put(static_cast<char>(~byte));
    }
    const auto third = classify_verbose(args);
    ASSERT_EQ(third.exit_code, 0) << third.err;
    EXPECT_NE(third.err.find("corrupt"), std::string::npos) << third.err;
    EXPECT_NE(third.err.find("computed"), std::string::npos) << third.err;
    EXPECT_EQ(first.out, third.out);
    EXPECT_NE(classify_verbose(args).err.find("read from cache"), std::string::npos);

    // A different label set or template misses.
    const auto other = classify_verbose("--jsonl --labels 'person,forklift' " + q((fixtures / "images" / "coffee.png").string()));
    EXPECT_NE(other.err.find("computed"), std::string::npos) << other.err;
}

// Prompt embeddings computed in bf16 differ from float32 ones: each precision has its own entry.
TEST_F(ClassifyCommand, CacheKeepsOneEntryPerPrecision) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no bf16 instructions (AVX512-BF16 or AMX)";
    const std::string args = "-k 2 --jsonl --labels 'person,forklift,car,computer' " + q((fixtures / "images" / "coffee.png").string());
    const auto f32 = classify_verbose("--precision f32 " + args);
    ASSERT_EQ(f32.exit_code, 0) << f32.err;
    EXPECT_NE(f32.err.find("computed"), std::string::npos) << f32.err;
    ASSERT_EQ(cache_entries().size(), 1u);
    const auto bf16 = classify_verbose("--precision bf16 " + args);
    ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
    EXPECT_NE(bf16.err.find("computed"), std::string::npos) << "bf16 must not read the float32 entry: " << bf16.err;
    EXPECT_EQ(cache_entries().size(), 2u);

    const auto f32_again = classify_verbose("--precision f32 " + args);
    ASSERT_EQ(f32_again.exit_code, 0) << f32_again.err;
    EXPECT_NE(f32_again.err.find("read from cache"), std::string::npos) << f32_again.err;
    EXPECT_EQ(f32_again.out, f32.out);
    const auto bf16_again = classify_verbose("--precision bf16 " + args);
    ASSERT_EQ(bf16_again.exit_code, 0) << bf16_again.err;
    EXPECT_NE(bf16_again.err.find("read from cache"), std::string::npos) << bf16_again.err;
    EXPECT_EQ(bf16_again.out, bf16.out);
    EXPECT_EQ(cache_entries().size(), 2u);
}

// The same precision on other kernels (int8 on AVX2 against VNNI, the reference backend's
// emulation against oneDNN) gives other numbers: a cache shared between them keeps an entry each.
TEST_F(ClassifyCommand, CacheKeepsOneEntryPerBackend) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    try {
        kernels::backend_by_name("onednn");
    } catch (const Error& e) {
        GTEST_SKIP() << e.what();
    }
    const std::string args = "--precision f32 -k 2 --jsonl --labels 'person,forklift' " + q((fixtures / "images" / "coffee.png").string());
    const auto reference = classify_verbose("--backend reference " + args);
    ASSERT_EQ(reference.exit_code, 0) << reference.err;
    EXPECT_NE(reference.err.find("computed"), std::string::npos) << reference.err;
    const auto fast = classify_verbose("--backend onednn " + args);
    ASSERT_EQ(fast.exit_code, 0) << fast.err;
    EXPECT_NE(fast.err.find("computed"), std::string::npos) << "oneDNN must not read the reference backend's entry: " << fast.err;
    EXPECT_EQ(cache_entries().size(), 2u);
    const auto reference_again = classify_verbose("--backend reference " + args);
    EXPECT_NE(reference_again.err.find("read from cache"), std::string::npos) << reference_again.err;
    EXPECT_EQ(reference_again.out, reference.out);
}

TEST_F(ClassifyCommand, FoldersAreWalkedAndUnreadableFilesFailPerFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    fs::create_directories(dir_ / "photos" / "nested");
    fs::copy_file(fixtures / "images" / "chelsea.png", dir_ / "photos" / "a.png");
    fs::copy_file(fixtures / "images" / "rocket.jpg", dir_ / "photos" / "nested" / "b.JPG");
    fs::copy_file(fixtures / "images" / "truncated.jpg", dir_ / "photos" / "c.jpg");
    std::ofstream(dir_ / "photos" / "notes.txt") << "not an image, and not picked up by the walk\n";
    std::ofstream(dir_ / "photos" / "d.png") << "not a png";
    const auto r = classify("--labels cat,rocket --jsonl " + q((dir_ / "photos").string()));
    EXPECT_EQ(r.exit_code, 1) << "failures must make the exit code non-zero";
    std::vector<nlohmann::json> lines;
    std::istringstream out(r.out);
    for (std::string line; std::getline(out, line);) lines.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(lines.size(), 4u) << r.out;
    EXPECT_EQ(fs::path(lines[0]["image"].get<std::string>()).filename(), "a.png");
    EXPECT_TRUE(lines[0].contains("top_k"));
    EXPECT_NE(lines[1]["error"].get<std::string>().find("c.jpg"), std::string::npos);
    EXPECT_NE(lines[2]["error"].get<std::string>().find("d.png"), std::string::npos);
    EXPECT_EQ(fs::path(lines[3]["image"].get<std::string>()).filename(), "b.JPG");
    EXPECT_NE(r.err.find("2 of 4 images"), std::string::npos) << r.err;
}

TEST_F(ClassifyCommand, ThresholdTurnsLowConfidenceIntoUnknown) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string image = q((fixtures / "images" / "coffee.png").string());
    // With random weights the probabilities of three labels are close to 1/3.
    auto r = classify("--labels cat,dog,rocket --json " + image);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["threshold"].get<double>(), 0.6000000238418579);
    EXPECT_TRUE(doc["results"][0]["unknown"].get<bool>());
    EXPECT_EQ(doc["results"][0]["label"], "unknown");
    EXPECT_EQ(doc["results"][0]["top_k"].size(), 3u) << "scores are reported even when the answer is unknown";
    r = classify("--labels cat,dog,rocket --threshold 0.1 --json " + image);
    doc = nlohmann::json::parse(r.out);
    EXPECT_FALSE(doc["results"][0]["unknown"].get<bool>());
    EXPECT_EQ(doc["results"][0]["label"], doc["results"][0]["top_k"][0]["label"]);
}

TEST_F(ClassifyCommand, RefusesBadLabelsTemplatesAndModels) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string image = q((fixtures / "images" / "coffee.png").string());
    auto r = classify("--labels ' , ' " + image);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("no labels"), std::string::npos) << r.err;
    r = classify("--labels cat,dog --template 'a photo' " + image);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("has no {}"), std::string::npos) << r.err;
    r = classify("--labels cat,dog,Cat --jsonl " + image);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("more than once"), std::string::npos) << "duplicates are warned about: " << r.err;
    r = classify("--precision int4 --labels cat,dog " + image);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--precision: int4 not in"), std::string::npos) << r.err;

    // A model file converted without --vocab has no tokenizer.
    const fs::path bare = dir_ / "bare.gguf";
    r = mclip::testing::run_command(cli() + " convert --arch mobileclip_s0 --in " +
                                    q((mclip::testing::test_models_dir() / "mobileclip_s0.safetensors").string()) + " --out " + q(bare.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = mclip::testing::run_command(cli() + " classify --no-cache --model " + q(bare.string()) + " --labels cat,dog " + image);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("no tokenizer"), std::string::npos) << r.err;
}

TEST_F(ClassifyCommand, ModelNamesResolveThroughTheCache) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string image = q((fixtures / "images" / "rocket.jpg").string());
    const fs::path cache = dir_ / "mclip-cache";
    // Nothing cached and the hub unreachable (a closed local port): the error says what was tried.
    auto r = mclip::testing::run_command("MCLIP_CACHE=" + q(cache.string()) + " HF_ENDPOINT=http://127.0.0.1:9 " + cli() +
                                         " classify --model mobileclip-s0 --labels cat,rocket " + image);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("http://127.0.0.1:9/apple/MobileCLIP-S0/resolve/main/mobileclip_s0.pt"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("by hand"), std::string::npos) << r.err;
    // Once the converted file is in the cache, the name is enough and no network is needed.
    fs::create_directories(cache / "models");
    fs::copy_file(s0_model(), cache / "models" / "mobileclip_s0.gguf");
    r = mclip::testing::run_command("MCLIP_CACHE=" + q(cache.string()) + " HF_ENDPOINT=http://127.0.0.1:9 " + cli() +
                                    " classify --model MobileCLIP-S0 --labels cat,rocket --jsonl " + image);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"top_k\""), std::string::npos) << r.out;
    r = mclip::testing::run_command(cli() + " classify --model mobileclip-s9 --labels cat " + image);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("not a model name (mobileclip-s0"), std::string::npos) << r.err;
}

}  // namespace
