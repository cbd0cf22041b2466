// The C API (mclip/mclip_c.h) as a C program sees it: the same numbers as the C++ API, and error
// statuses with messages, never a crash, for null, freed and foreign handles and small buffers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mclip/mclip.h"
#include "mclip/mclip_c.h"
#include "support/fixtures.h"

namespace {

std::string model_path() { return (mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string(); }

mclip_model* load_f32() {
    mclip_model_params params = mclip_model_default_params();
    params.precision = "f32";
    params.threads = 1;
    mclip_model* model = nullptr;
    EXPECT_EQ(mclip_model_load(model_path().c_str(), &params, &model), MCLIP_OK) << mclip_last_error();
    return model;
}

}  // namespace

TEST(CApi, EmbedsAndClassifiesLikeTheCppApi) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    mclip_model* model = load_f32();
    ASSERT_NE(model, nullptr);
    mclip_model_info info;
    ASSERT_EQ(mclip_model_get_info(model, &info), MCLIP_OK);
    EXPECT_STREQ(info.architecture, "mobileclip_s0");
    EXPECT_STREQ(info.precision, "f32");
    EXPECT_EQ(info.embed_dim, 512);
    EXPECT_EQ(info.image_size, 256);
    EXPECT_EQ(info.context_length, 77);
    EXPECT_EQ(info.threads, 1);
    EXPECT_EQ(info.has_tokenizer, 1);

    mclip::ModelParams params = mclip::model_default_params();
    params.precision = "f32";
    params.threads = 1;
    const mclip::Model cpp = mclip::Model::load(model_path(), params);
    const std::string image = (fixtures / "images" / "chelsea.png").string();
    std::vector<float> embedding(512);
    ASSERT_EQ(mclip_embed_image_file(model, image.c_str(), embedding.data(), embedding.size()), MCLIP_OK) << mclip_last_error();
    EXPECT_EQ(embedding, cpp.embed_image_files({image}).values);

    const char* texts[] = {"a photo of a cat.", "a rocket"};
    std::vector<float> text_embeddings(2 * 512);
    ASSERT_EQ(mclip_embed_texts(model, texts, 2, text_embeddings.data(), text_embeddings.size()), MCLIP_OK);
    EXPECT_EQ(text_embeddings, cpp.embed_texts({texts[0], texts[1]}).values);

    std::vector<int32_t> ids(77);
    ASSERT_EQ(mclip_tokenize(model, texts[0], ids.data(), ids.size()), MCLIP_OK);
    EXPECT_EQ(ids, cpp.tokenize({texts[0]}));

    const char* names[] = {"cat", "rocket", "cup"};
    mclip_labels* labels = nullptr;
    ASSERT_EQ(mclip_labels_create(model, names, 3, nullptr, 0, nullptr, &labels), MCLIP_OK) << mclip_last_error();
    int count = 0;
    ASSERT_EQ(mclip_labels_count(labels, &count), MCLIP_OK);
    EXPECT_EQ(count, 3);
    mclip_score top[3];
    mclip_classification result;
    ASSERT_EQ(mclip_classify(model, labels, embedding.data(), embedding.size(), 3, 0.0f, top, 3, &result), MCLIP_OK);
    const mclip::Classification expected = cpp.classify(embedding, cpp.labels({"cat", "rocket", "cup"}), 3, 0.0f);
    ASSERT_EQ(result.top_count, 3);
    EXPECT_EQ(result.label, expected.top[0].index);
    for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(top[k].index, expected.top[k].index);
        EXPECT_FLOAT_EQ(top[k].probability, expected.top[k].probability);
        EXPECT_FLOAT_EQ(top[k].cosine, expected.top[k].cosine);
    }
    const char* best = nullptr;
    ASSERT_EQ(mclip_labels_name(labels, result.label, &best), MCLIP_OK);
    EXPECT_EQ(std::string(best), expected.label);
    ASSERT_EQ(mclip_classify(model, labels, embedding.data(), embedding.size(), 1, 1.0f, top, 1, &result), MCLIP_OK);
    EXPECT_EQ(result.label, -1) << "below the threshold the answer is unknown";

    mclip_labels_free(labels);
    mclip_model_free(model);
}

TEST(CApi, BadHandlesAndBuffersAreErrorsWithMessages) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    std::vector<float> out(512);
    mclip_model_info info;
    EXPECT_EQ(mclip_model_get_info(nullptr, &info), MCLIP_ERROR_INVALID_HANDLE);
    EXPECT_NE(std::string(mclip_last_error()).find("null"), std::string::npos) << mclip_last_error();

    mclip_model* model = load_f32();
    ASSERT_NE(model, nullptr);
    const std::string image = (fixtures / "images" / "chelsea.png").string();
    EXPECT_EQ(mclip_embed_image_file(model, image.c_str(), out.data(), 100), MCLIP_ERROR_BUFFER_TOO_SMALL);
    EXPECT_NE(std::string(mclip_last_error()).find("512"), std::string::npos) << mclip_last_error();
    EXPECT_EQ(mclip_embed_image_file(model, image.c_str(), nullptr, 512), MCLIP_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(mclip_embed_image_file(model, "/nonexistent.png", out.data(), out.size()), MCLIP_ERROR_IO);
    EXPECT_NE(std::string(mclip_last_error()).find("/nonexistent.png"), std::string::npos) << mclip_last_error();
    const std::string truncated = (fixtures / "images" / "truncated.jpg").string();
    EXPECT_EQ(mclip_embed_image_file(model, truncated.c_str(), out.data(), out.size()), MCLIP_ERROR_INVALID_INPUT);
    const uint8_t junk[] = {1, 2, 3, 4};
    EXPECT_EQ(mclip_embed_image_memory(model, junk, sizeof junk, out.data(), out.size()), MCLIP_ERROR_INVALID_INPUT);
    EXPECT_EQ(mclip_embed_image_rgb(model, junk, 100, 100, 1, out.data(), out.size()), MCLIP_ERROR_INVALID_ARGUMENT);
    const char* texts[] = {"a", nullptr};
    EXPECT_EQ(mclip_embed_texts(model, texts, 2, out.data(), 1024), MCLIP_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(mclip_embed_texts(model, texts, 1, out.data(), 10), MCLIP_ERROR_BUFFER_TOO_SMALL);
    std::vector<int32_t> ids(10);
    EXPECT_EQ(mclip_tokenize(model, "a cat", ids.data(), ids.size()), MCLIP_ERROR_BUFFER_TOO_SMALL);
    mclip_labels* labels = nullptr;
    EXPECT_EQ(mclip_labels_create(model, nullptr, 0, nullptr, 0, nullptr, &labels), MCLIP_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(labels, nullptr);
    const char* bad_template[] = {"no placeholder"};
    const char* names[] = {"cat"};
    EXPECT_EQ(mclip_labels_create(model, names, 1, bad_template, 1, nullptr, &labels), MCLIP_ERROR_INVALID_ARGUMENT);

    // classify: a top-k buffer below min(top_k, labels), an embedding of another size, a freed label set.
    const char* two[] = {"cat", "cup"};
    ASSERT_EQ(mclip_labels_create(model, two, 2, nullptr, 0, nullptr, &labels), MCLIP_OK) << mclip_last_error();
    mclip_score top[2];
    mclip_classification result;
    EXPECT_EQ(mclip_classify(model, labels, out.data(), 512, 2, 0.0f, top, 1, &result), MCLIP_ERROR_BUFFER_TOO_SMALL);
    EXPECT_NE(std::string(mclip_last_error()).find("2 are needed"), std::string::npos) << mclip_last_error();
    EXPECT_EQ(mclip_classify(model, labels, out.data(), 10, 1, 0.0f, top, 2, &result), MCLIP_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mclip_last_error()).find("10 values"), std::string::npos) << mclip_last_error();
    mclip_labels_free(labels);
    EXPECT_EQ(mclip_classify(model, labels, out.data(), 512, 1, 0.0f, top, 2, &result), MCLIP_ERROR_INVALID_HANDLE);
    EXPECT_NE(std::string(mclip_last_error()).find("label set"), std::string::npos) << mclip_last_error();
    const char* name = nullptr;
    EXPECT_EQ(mclip_labels_name(labels, 0, &name), MCLIP_ERROR_INVALID_HANDLE);
    mclip_labels_free(labels);  // a second free is ignored

    mclip_model_params params = mclip_model_default_params();
    params.precision = "int4";
    mclip_model* other = nullptr;
    EXPECT_EQ(mclip_model_load(model_path().c_str(), &params, &other), MCLIP_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(other, nullptr);
    EXPECT_NE(std::string(mclip_last_error()).find("int4"), std::string::npos) << mclip_last_error();

    // A freed handle, and a pointer that never was one, are refused without being touched.
    mclip_model_free(model);
    EXPECT_EQ(mclip_embed_image_file(model, image.c_str(), out.data(), out.size()), MCLIP_ERROR_INVALID_HANDLE);
    EXPECT_NE(std::string(mclip_last_error()).find("freed"), std::string::npos) << mclip_last_error();
    mclip_model_free(model);  // a second free is ignored
    int not_a_model = 0;
    EXPECT_EQ(mclip_model_get_info(reinterpret_cast<mclip_model*>(&not_a_model), &info), MCLIP_ERROR_INVALID_HANDLE);
    int count = 0;
    EXPECT_EQ(mclip_labels_count(reinterpret_cast<mclip_labels*>(&not_a_model), &count), MCLIP_ERROR_INVALID_HANDLE);
    mclip_labels_free(nullptr);
    mclip_model_free(nullptr);
    EXPECT_STREQ(mclip_status_string(MCLIP_ERROR_BUFFER_TOO_SMALL), "buffer too small");
}
