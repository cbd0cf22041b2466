// `mclip bench` reports what it measured as JSON (the numbers themselves are judged by people,
// side by side, not by tests).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"

namespace {

std::string cli() { return mclip::testing::shell_quote(mclip::testing::mclip_executable().string()); }

TEST(BenchCommand, TokenizerAndPreprocessStagesReportRates) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    auto r = mclip::testing::run_command(cli() + " bench --encoder tokenizer --json --vocab " +
                                         (fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["prompts"], 10000);
    EXPECT_EQ(doc["threads"], 1);
    EXPECT_GT(doc["warm_prompts_per_s"].get<double>(), 0);
    EXPECT_NEAR(doc["warm_prompts_per_s"].get<double>() * doc["warm_ms"].get<double>() / 1000.0, 10000, 100);

    r = mclip::testing::run_command(cli() + " bench --encoder preprocess --json --iterations 5");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["width"], 1920);
    EXPECT_EQ(doc["height"], 1080);
    for (const char* key : {"decode_jpeg_median_ms", "decode_png_median_ms", "preprocess_median_ms"}) {
        EXPECT_GT(doc[key].get<double>(), 0) << key;
    }
    r = mclip::testing::run_command(cli() + " bench --encoder tokenizer");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--vocab"), std::string::npos) << r.err;
}

TEST(BenchCommand, EncoderReportsLatencyThroughputAndMemory) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto r = mclip::testing::run_command(cli() + " bench --json --encoder text --warmup 1 --iterations 3 --model " +
                                               (mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["model"], "mobileclip_s0");
    EXPECT_EQ(doc["iterations"], 3);
    EXPECT_LE(doc["min_ms"].get<double>(), doc["median_ms"].get<double>());
    EXPECT_LE(doc["median_ms"].get<double>(), doc["p90_ms"].get<double>());
    EXPECT_GT(doc["peak_rss_mib"].get<double>(), 100);  // the mapped weights alone are 206 MiB
    // The cold start runs from the process's start to the first result, so the load and the first
    // call (which builds the encoder) lie inside it.
    EXPECT_GT(doc["first_call_ms"].get<double>(), 0);
    EXPECT_GE(doc["cold_start_ms"].get<double>(), doc["load_ms"].get<double>() + doc["first_call_ms"].get<double>());
}

}  // namespace
