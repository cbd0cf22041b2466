// The public API as an application uses it: only include/mclip/mclip.h.
#include <gtest/gtest.h>

#include <cmath>

#include "mclip/mclip.h"
#include "support/fixtures.h"

TEST(PublicApi, EmbedsClassifiesAndReportsErrors) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    mclip::Model model = mclip::Model::load((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string());
    EXPECT_EQ(model.architecture(), "mobileclip_s0");
    EXPECT_EQ(model.image_size(), 256);
    EXPECT_NEAR(model.logit_scale(), 1 / 0.07, 1e-3);

    const auto image = (fixtures / "images" / "chelsea.png").string();
    const mclip::Embeddings e = model.embed_image_files({image});
    ASSERT_EQ(e.rows, 1);
    ASSERT_EQ(e.dim, 512);
    const mclip::Embeddings t = model.embed_texts({"a photo of a cat.", "a rocket"});
    ASSERT_EQ(t.rows, 2);

    const mclip::LabelSet labels = model.labels({"cat", "rocket", "cup"});
    ASSERT_EQ(labels.classes.rows, 3);
    double norm = 0;
    for (int i = 0; i < 512; ++i) norm += labels.classes.values[i] * labels.classes.values[i];
    EXPECT_NEAR(norm, 1.0, 1e-5);
    const auto scores = model.classify_file(image, labels, 3);
    ASSERT_EQ(scores.size(), 3u);
    double total = 0;
    for (const auto& s : scores) total += s.probability;
    EXPECT_NEAR(total, 1.0, 1e-5);
    EXPECT_GE(scores[0].probability, scores[1].probability);
    // The logit is the scale times the cosine with the single-template class embedding.
    double dot = 0, image_norm = 0;
    const auto index = scores[0].label == "cat" ? 0 : scores[0].label == "rocket" ? 1 : 2;
    for (int i = 0; i < 512; ++i) {
        dot += e.values[i] * labels.classes.values[index * 512 + i];
        image_norm += e.values[i] * e.values[i];
    }
    EXPECT_NEAR(scores[0].logit, model.logit_scale() * dot / std::sqrt(image_norm), 1e-3);

    try {
        model.classify_file((fixtures / "images" / "truncated.jpg").string(), labels);
        FAIL() << "a truncated image must throw";
    } catch (const mclip::Error& error) {
        EXPECT_EQ(error.code(), mclip::ErrorCode::invalid_input);
        EXPECT_NE(std::string(error.what()).find("truncated.jpg"), std::string::npos);
    }
    EXPECT_THROW(model.labels({}), mclip::Error);
    EXPECT_THROW(mclip::Model::load("/nonexistent/model.gguf"), mclip::Error);
}

namespace {

// ||a − b|| / ||b|| over one embedding.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double difference = 0, norm = 0;
    for (size_t i = 0; i < b.size(); ++i) {
        difference += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        norm += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(difference / norm);
}

}  // namespace

TEST(PublicApi, PrecisionFollowsTheParams) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const std::string path = (mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string();
    const std::string image = (fixtures / "images" / "chelsea.png").string();
    mclip::ModelParams params = mclip::model_default_params();
    EXPECT_EQ(params.precision, "auto");

    params.precision = "int4";
    try {
        mclip::Model::load(path, params);
        FAIL() << "an unknown precision must be refused";
    } catch (const mclip::Error& error) {
        EXPECT_EQ(error.code(), mclip::ErrorCode::invalid_argument);
        EXPECT_NE(std::string(error.what()).find("int4"), std::string::npos) << error.what();
    }

    params.precision = "f32";
    const mclip::Embeddings f32 = mclip::Model::load(path, params).embed_image_files({image});
    params.precision = "auto";
    const mclip::Embeddings automatic = mclip::Model::load(path, params).embed_image_files({image});
    params.precision = "bf16";
    mclip::Embeddings bf16;
    try {
        bf16 = mclip::Model::load(path, params).embed_image_files({image});
    } catch (const mclip::Error& error) {
        if (error.code() != mclip::ErrorCode::unsupported) throw;
        GTEST_SKIP() << error.what();
    }
    EXPECT_NE(bf16.values, f32.values) << "the bf16 model computed in float32";
    EXPECT_LE(relative_difference(bf16.values, f32.values), 2e-2);
    EXPECT_TRUE(automatic.values == bf16.values || automatic.values == f32.values) << "auto is one of the precisions";
}
