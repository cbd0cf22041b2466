// The public API as an application uses it: only include/mclip/mclip.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cpuid.h>
#include <fstream>
#include <iterator>
#include <map>

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
    const mclip::Classification classification = model.classify_file(image, labels, 3);
    const auto& scores = classification.top;
    ASSERT_EQ(scores.size(), 3u);
    EXPECT_EQ(classification.label, scores[0].label);
    EXPECT_FLOAT_EQ(classification.confidence, scores[0].probability);
    double total = 0;
    for (const auto& s : scores) total += s.probability;
    EXPECT_NEAR(total, 1.0, 1e-5);
    EXPECT_GE(scores[0].probability, scores[1].probability);
    // The logit is the scale times the cosine with the single-template class embedding.
    double dot = 0, image_norm = 0;
    const int index = scores[0].index;
    EXPECT_EQ(labels.labels[index], scores[0].label);
    for (int i = 0; i < 512; ++i) {
        dot += e.values[i] * labels.classes.values[index * 512 + i];
        image_norm += e.values[i] * e.values[i];
    }
    EXPECT_NEAR(scores[0].logit, model.logit_scale() * dot / std::sqrt(image_norm), 1e-3);
    EXPECT_NEAR(scores[0].cosine, dot / std::sqrt(image_norm), 1e-6);

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

TEST(PublicApi, DescribesTheModelFromItsFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    mclip::ModelParams params = mclip::model_default_params();
    params.precision = "f32";
    params.threads = 1;
    const mclip::Model model = mclip::Model::load((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string(), params);
    const mclip::ModelInfo& info = model.info();
    EXPECT_EQ(info.architecture, "mobileclip_s0");
    EXPECT_EQ(info.name, "MobileCLIP-S0");
    EXPECT_EQ(info.embed_dim, 512);
    EXPECT_EQ(info.image_size, 256);
    EXPECT_EQ(info.preprocess.size, 256);
    EXPECT_EQ(info.context_length, 77);
    EXPECT_EQ(info.precision, "f32");
    EXPECT_EQ(info.threads, 1);
    EXPECT_EQ(info.weights, "f32");
    EXPECT_TRUE(info.has_tokenizer);
    EXPECT_TRUE(info.has_image_encoder);
    EXPECT_TRUE(info.has_text_encoder);
    EXPECT_NE(info.path.find("mobileclip_s0.gguf"), std::string::npos);
    const std::vector<mclip::BackendInfo> registered = mclip::backends();
    EXPECT_TRUE(std::any_of(registered.begin(), registered.end(),
                            [&](const mclip::BackendInfo& b) { return b.name == info.backend && b.available; }))
        << "the backend chosen at load, " << info.backend << ", is a registered one available here";
    EXPECT_EQ(mclip::precision_names(), (std::vector<std::string>{"f32", "bf16", "int8"}));
    bool reference_found = false;
    for (const mclip::BackendInfo& backend : mclip::backends()) {
        if (backend.name != "reference") continue;
        reference_found = true;
        EXPECT_TRUE(backend.available);
        EXPECT_NE(std::find(backend.precisions.begin(), backend.precisions.end(), "f32"), backend.precisions.end());
    }
    EXPECT_TRUE(reference_found);
    EXPECT_STREQ(mclip::version(), MCLIP_VERSION_STRING);
}

TEST(PublicApi, ImagesFromFilesMemoryAndFramesAgree) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    mclip::ModelParams params = mclip::model_default_params();
    params.precision = "f32";
    const mclip::Model model = mclip::Model::load((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string(), params);
    const std::string path = (fixtures / "images" / "chelsea.png").string();
    const mclip::Embeddings from_file = model.embed_image_files({path});

    std::ifstream in(path, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const mclip::Image image = mclip::decode_image_memory(bytes, "chelsea.png");
    EXPECT_EQ(model.embed_images(std::span<const mclip::Image>(&image, 1)).values, from_file.values);

    // The same pixels as packed RGB with row padding, as RGBA and as BGR.
    const size_t stride = static_cast<size_t>(image.width) * 3 + 5;
    std::vector<uint8_t> padded(stride * image.height), rgba(static_cast<size_t>(image.width) * image.height * 4),
        bgr(image.rgb.size());
    for (int y = 0; y < image.height; ++y) {
        for (int x = 0; x < image.width; ++x) {
            const uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
            std::copy(p, p + 3, &padded[y * stride + x * 3]);
            uint8_t* q = &rgba[(static_cast<size_t>(y) * image.width + x) * 4];
            q[0] = p[0], q[1] = p[1], q[2] = p[2], q[3] = 7;
            uint8_t* b = &bgr[(static_cast<size_t>(y) * image.width + x) * 3];
            b[0] = p[2], b[1] = p[1], b[2] = p[0];
        }
    }
    mclip::FrameView frame;
    frame.width = image.width;
    frame.height = image.height;
    frame.planes[0] = padded.data();
    frame.strides[0] = stride;
    EXPECT_EQ(model.embed_frame(frame).values, from_file.values);
    frame.format = mclip::PixelFormat::rgba;
    frame.planes[0] = rgba.data();
    frame.strides[0] = static_cast<size_t>(image.width) * 4;
    EXPECT_EQ(model.embed_frame(frame).values, from_file.values);
    frame.format = mclip::PixelFormat::bgr24;
    frame.planes[0] = bgr.data();
    frame.strides[0] = static_cast<size_t>(image.width) * 3;
    EXPECT_EQ(model.embed_frame(frame).values, from_file.values);

    frame.strides[0] = 2;
    EXPECT_THROW(model.embed_frame(frame), mclip::Error);
}

TEST(PublicApi, Nv12FramesFollowTheYuvFormulas) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const mclip::Model model = mclip::Model::load((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string());
    // A frame of the model's own size is not resized, so preprocessing shows the converted pixels
    // as x / 255 (MobileCLIP normalizes with mean 0, std 1).
    const int size = model.image_size();
    auto converted = [&](uint8_t y, uint8_t u, uint8_t v, bool full_range, mclip::YuvMatrix matrix) {
        std::vector<uint8_t> luma(static_cast<size_t>(size) * size, y), chroma(static_cast<size_t>(size) * size / 2);
        for (size_t i = 0; i < chroma.size(); i += 2) chroma[i] = u, chroma[i + 1] = v;
        mclip::FrameView frame;
        frame.format = mclip::PixelFormat::nv12;
        frame.width = frame.height = size;
        frame.planes[0] = luma.data();
        frame.planes[1] = chroma.data();
        frame.strides[0] = frame.strides[1] = static_cast<size_t>(size);
        frame.full_range = full_range;
        frame.matrix = matrix;
        std::vector<float> out(static_cast<size_t>(3) * size * size);
        model.preprocess(frame, out.data());
        const size_t plane = static_cast<size_t>(size) * size;
        return std::array<int, 3>{static_cast<int>(std::lround(out[0] * 255)), static_cast<int>(std::lround(out[plane] * 255)),
                                  static_cast<int>(std::lround(out[2 * plane] * 255))};
    };
    EXPECT_EQ(converted(16, 128, 128, false, mclip::YuvMatrix::bt601), (std::array<int, 3>{0, 0, 0}));
    EXPECT_EQ(converted(235, 128, 128, false, mclip::YuvMatrix::bt601), (std::array<int, 3>{255, 255, 255}));
    EXPECT_EQ(converted(100, 128, 128, true, mclip::YuvMatrix::bt709), (std::array<int, 3>{100, 100, 100}));
    // Limited-range BT.601 red (Y 81, U 90, V 240) is (255, 0, 0) within rounding.
    const auto red = converted(81, 90, 240, false, mclip::YuvMatrix::bt601);
    EXPECT_GE(red[0], 254);
    EXPECT_LE(red[1], 1);
    EXPECT_LE(red[2], 1);
}

TEST(PublicApi, TokensTextsAndThresholds) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    mclip::ModelParams params = mclip::model_default_params();
    params.precision = "f32";
    const mclip::Model model = mclip::Model::load((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string(), params);
    const std::vector<std::string> texts = {"a photo of a cat.", "a diagram"};
    const std::vector<int32_t> ids = model.tokenize(texts);
    ASSERT_EQ(ids.size(), 2u * 77);
    EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 77), model.tokenizer().context(texts[0]));
    EXPECT_EQ(model.embed_tokens(ids.data(), 2).values, model.embed_texts(texts).values);
    const int32_t out_of_range[77] = {49406, 99999, 49407};
    EXPECT_THROW(model.embed_tokens(out_of_range, 1), mclip::Error);

    const mclip::LabelSet labels = model.labels({"cat", "diagram"}, std::vector<std::string>{"a photo of a {}.", "a {}."});
    EXPECT_EQ(labels.templates.size(), 2u);
    const mclip::Embeddings image = model.embed_image_files({(fixtures / "images" / "chelsea.png").string()});
    const mclip::Classification certain = model.classify(image.row(0), labels, 5, 0.0f);
    EXPECT_FALSE(certain.unknown);
    EXPECT_EQ(certain.top.size(), 2u) << "top_k is clamped to the label count";
    const mclip::Classification unsure = model.classify(image.row(0), labels, 1, 1.0f);
    EXPECT_TRUE(unsure.unknown);
    EXPECT_EQ(unsure.label, "unknown");
    EXPECT_THROW(model.classify(std::span<const float>(image.values.data(), 10), labels, 1, 0.5f), mclip::Error);
    EXPECT_THROW(model.classify(image.row(0), labels, 0, 0.5f), mclip::Error);
}

TEST(PublicApi, LogSinkReceivesMessages) {
    std::vector<std::string> seen;
    mclip::log_set_sink([&](mclip::LogLevel level, std::string_view message) {
        if (level == mclip::LogLevel::warning) seen.emplace_back(message);
    });
    mclip::log_message(mclip::LogLevel::warning, "from the test");
    mclip::log_message(mclip::LogLevel::debug, "below the level");
    mclip::log_set_sink(nullptr);
    EXPECT_EQ(seen, std::vector<std::string>{"from the test"});
}

// The peak loops: one rate per precision, available exactly where the CPU has the instructions,
// and below what the vector width allows (a loop that counted too many multiply-adds would show).
TEST(PublicApi, PeakRatesFollowTheCpu) {
    const std::vector<mclip::PeakRate> rates = mclip::measure_peak(1, 0.05);
    std::vector<std::string> names;
    for (const mclip::PeakRate& rate : rates) names.push_back(rate.precision);
    ASSERT_EQ(names, mclip::precision_names()) << "one rate per precision, named as everywhere else";
    // AMX from CPUID leaf 7, EDX: tiles bit 24, bf16 22, int8 25 (Clang 14's
    // __builtin_cpu_supports does not know them).
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
    const bool amx_tiles = edx & (1u << 24);
    const std::map<std::string, bool> has = {
        {"f32", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"bf16", __builtin_cpu_supports("avx512bf16") || (amx_tiles && (edx & (1u << 22)))},
        {"int8", (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) || (amx_tiles && (edx & (1u << 25)))}};
    // Multiply-adds per cycle of one core at most: two pipes of 16 float32 lanes, doubled for
    // bf16 pairs and doubled again for int8 quads; on AMX tiles 1024 bf16 and 2048 int8 (twice
    // Sapphire Rapids' rate); clocks up to 6 GHz.
    const std::map<std::string, double> most = {{"f32", 32 * 6.0}, {"bf16", 64 * 6.0}, {"int8", 128 * 6.0}};
    const std::map<std::string, double> most_on_tiles = {{"bf16", 1024 * 6.0}, {"int8", 2048 * 6.0}};
    for (const mclip::PeakRate& rate : rates) {
        SCOPED_TRACE(rate.precision);
        EXPECT_EQ(rate.available, has.at(rate.precision));
        EXPECT_EQ(rate.threads, 1);
        if (rate.available) {
            EXPECT_FALSE(rate.instructions.empty());
            EXPECT_GT(rate.gmac_per_second, 0.0);  // how fast is for benchmarks (a sanitizer build is slow)
            const bool on_tiles = rate.instructions.find("AMX") != std::string::npos;
            EXPECT_LT(rate.gmac_per_second, on_tiles ? most_on_tiles.at(rate.precision) : most.at(rate.precision));
        } else {
            EXPECT_NE(rate.reason.find("this CPU has no"), std::string::npos) << rate.reason;
            EXPECT_EQ(rate.gmac_per_second, 0.0);
        }
    }
    EXPECT_THROW(mclip::measure_peak(1, 0), mclip::Error);
    EXPECT_THROW(mclip::measure_peak(-1), mclip::Error);
}
