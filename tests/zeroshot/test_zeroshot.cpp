#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/error.h"
#include "io/mapped_file.h"
#include "support/fixtures.h"
#include "zeroshot/text_cache.h"
#include "zeroshot/zeroshot.h"

using namespace mclip;

TEST(Labels, ParseCommaSeparatedListTrimsAndDropsEmpties) {
    EXPECT_EQ(parse_label_list(" person, forklift,car ,, computer "),
              (std::vector<std::string>{"person", "forklift", "car", "computer"}));
    EXPECT_TRUE(parse_label_list(" , ,").empty());
    EXPECT_EQ(parse_label_list("traffic light"), (std::vector<std::string>{"traffic light"}));
}

TEST(Labels, FileSkipsBlankLinesAndComments) {
    const auto dir = mclip::testing::make_temp_dir("mclip-labels");
    std::ofstream(dir / "labels.txt") << "# warehouse\nperson\n\n  forklift  \r\ncar\n";
    EXPECT_EQ(read_label_file(dir / "labels.txt"), (std::vector<std::string>{"person", "forklift", "car"}));
    EXPECT_THROW(read_label_file(dir / "missing.txt"), Error);
    std::filesystem::remove_all(dir);
}

TEST(Labels, DuplicatesAreFoundCaseInsensitively) {
    EXPECT_EQ(duplicate_labels({"Cat", "dog", "cat", "CAT", "dog"}), (std::vector<std::string>{"cat", "dog"}));
    EXPECT_TRUE(duplicate_labels({"cat", "dog"}).empty());
}

TEST(Labels, PresetsExistAndUnknownOnesAreNamed) {
    EXPECT_EQ(label_preset("coco").size(), 80u);
    try {
        label_preset("nope");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("coco"), std::string::npos);
    }
}

TEST(Templates, ExpandClassMajorAndReplaceEveryHole) {
    const auto prompts = expand_prompts({"cat", "dog"}, {"a photo of a {}.", "{} and another {}"});
    EXPECT_EQ(prompts, (std::vector<std::string>{"a photo of a cat.", "cat and another cat", "a photo of a dog.",
                                                 "dog and another dog"}));
    EXPECT_THROW(validate_templates({"a photo"}), Error);
    EXPECT_THROW(validate_templates({}), Error);
    EXPECT_NO_THROW(validate_templates({"{}"}));
}

TEST(Ensemble, NormalizesAveragesAndNormalizesAgain) {
    // Class 0: templates (3, 4) and (0, 2); unit vectors (0.6, 0.8) and (0, 1); mean (0.3, 0.9).
    const Tensor prompts = Tensor::from_f32({4, 2}, std::vector<float>{3, 4, 0, 2, -5, 0, -1, 0});
    const Tensor classes = ensemble_class_embeddings(prompts, 2, 2);
    const double norm = std::sqrt(0.3 * 0.3 + 0.9 * 0.9);
    EXPECT_NEAR(classes.f32()[0], 0.3 / norm, 1e-6);
    EXPECT_NEAR(classes.f32()[1], 0.9 / norm, 1e-6);
    EXPECT_NEAR(classes.f32()[2], -1.0, 1e-6);
    EXPECT_NEAR(classes.f32()[3], 0.0, 1e-6);
}

TEST(Classifier, SoftmaxOverScaledCosinesWithThreshold) {
    const Tensor classes = Tensor::from_f32({3, 2}, std::vector<float>{1, 0, 0, 1, -1, 0});
    ZeroShotClassifier classifier({"east", "north", "west"}, classes, 10.0f);
    const float image[2] = {2, 2};  // 45 degrees between east and north
    const auto logits = classifier.logits(image);
    EXPECT_NEAR(logits[0], 10 * std::sqrt(0.5), 1e-5);
    EXPECT_NEAR(logits[1], 10 * std::sqrt(0.5), 1e-5);
    EXPECT_NEAR(logits[2], -10 * std::sqrt(0.5), 1e-5);
    const auto result = classifier.classify(image, 2, 0.6f);
    ASSERT_EQ(result.top.size(), 2u);
    const double expected = 1.0 / (2.0 + std::exp(-20 * std::sqrt(0.5)));
    EXPECT_NEAR(result.top[0].probability, expected, 1e-6);
    EXPECT_EQ(result.top[0].index, 0);  // ties keep label order
    EXPECT_EQ(result.top[1].index, 1);
    EXPECT_TRUE(result.unknown);  // 0.5 < 0.6
    const float clear[2] = {1, 0.1f};
    EXPECT_FALSE(classifier.classify(clear, 1, 0.6f).unknown);
    EXPECT_EQ(classifier.classify(clear, 10, 0.6f).top.size(), 3u);
}

class TextCache : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-text-cache"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(TextCache, StoresAndLoadsExactly) {
    TextEmbeddingCache cache(dir_);
    const Tensor e = Tensor::from_f32({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6.5f});
    const std::string key = TextEmbeddingCache::key("model-a", "f32", {"a photo of a cat.", "a photo of a dog."});
    EXPECT_FALSE(cache.load(key, 2, 3).has_value());
    cache.store(key, e);
    const auto loaded = cache.load(key, 2, 3);
    ASSERT_TRUE(loaded.has_value());
    for (int i = 0; i < 6; ++i) EXPECT_EQ(loaded->f32()[i], e.f32()[i]);
}

TEST_F(TextCache, KeyChangesWithModelPrecisionOrAnyPrompt) {
    const std::string base = TextEmbeddingCache::key("model-a", "f32", {"cat", "dog"});
    EXPECT_NE(base, TextEmbeddingCache::key("model-b", "f32", {"cat", "dog"}));
    EXPECT_NE(base, TextEmbeddingCache::key("model-a", "bf16", {"cat", "dog"}));
    EXPECT_NE(base, TextEmbeddingCache::key("model-a", "f32", {"cat", "dogs"}));
    EXPECT_NE(base, TextEmbeddingCache::key("model-a", "f32", {"dog", "cat"}));
    EXPECT_NE(TextEmbeddingCache::key("m", "f32", {"ab", "c"}), TextEmbeddingCache::key("m", "f32", {"a", "bc"}));
    // The precision is a field of its own, not a prefix of the first prompt.
    EXPECT_NE(TextEmbeddingCache::key("m", "f32", {"x"}), TextEmbeddingCache::key("m", "f3", {"2x"}));
    EXPECT_NE(TextEmbeddingCache::key("m", "f32", {"x", "y"}), TextEmbeddingCache::key("m", "x", {"f32", "y"}));
    EXPECT_EQ(base, TextEmbeddingCache::key("model-a", "f32", {"cat", "dog"}));
}

TEST_F(TextCache, CorruptOrTruncatedEntriesAreRejectedAndRemoved) {
    TextEmbeddingCache cache(dir_);
    const Tensor e = Tensor::from_f32({1, 4}, std::vector<float>{1, 2, 3, 4});
    const std::string key = TextEmbeddingCache::key("m", "f32", {"x"});
    cache.store(key, e);
    const auto path = cache.entry_path(key);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(-2, std::ios::end);
        f.put('\x7f');  // flip payload bytes
    }
    EXPECT_FALSE(cache.load(key, 1, 4).has_value());
    EXPECT_FALSE(std::filesystem::exists(path));
    cache.store(key, e);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
    EXPECT_FALSE(cache.load(key, 1, 4).has_value());
    cache.store(key, e);
    EXPECT_FALSE(cache.load(key, 2, 2).has_value()) << "a shape mismatch must not pass as a hit";
}
