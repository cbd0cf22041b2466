// `mclip tokenize` end to end: texts as arguments, JSON Lines on standard input, model files.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "support/fixtures.h"
#include "mclip/tokenizer.h"

using mclip::testing::mclip_executable;
using mclip::testing::run_command;
using mclip::testing::shell_quote;

namespace {

std::string vocabulary_option(const std::filesystem::path& fixtures) {
    return " --vocab " + shell_quote((fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz").string());
}

std::string tokenize_command(const std::string& options) {
    return shell_quote(mclip_executable().string()) + " tokenize" + options;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

TEST(TokenizeCommand, PrintsIdsOfEachText) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto result = run_command(tokenize_command(vocabulary_option(fixtures) + " 'a photo of a cat' 'A photo of a dog.'"));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    // Golden ids from fixtures/tokenizer/cases.jsonl.
    EXPECT_EQ(lines_of(result.out), (std::vector<std::string>{"49406 320 1125 539 320 2368 49407",
                                                              "49406 320 1125 539 320 1929 269 49407"}));
    const auto context = run_command(tokenize_command(vocabulary_option(fixtures) + " --context 'a photo of a cat'"));
    ASSERT_EQ(context.exit_code, 0) << context.err;
    std::istringstream ids(context.out);
    std::vector<int> values{std::istream_iterator<int>(ids), std::istream_iterator<int>()};
    ASSERT_EQ(values.size(), 77u);
    EXPECT_EQ(values[6], 49407);
    EXPECT_EQ(values[7], 0);
}

TEST(TokenizeCommand, JsonLinesGiveTextIdsAndContextForEveryGoldenCase) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto cases_path = fixtures / "tokenizer" / "cases.jsonl";
    const auto result = run_command(tokenize_command(vocabulary_option(fixtures) + " --jsonl < " + shell_quote(cases_path.string())));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    std::ifstream in(cases_path);
    std::string line;
    std::vector<nlohmann::json> expected;
    while (std::getline(in, line)) {
        if (!line.empty()) expected.push_back(nlohmann::json::parse(line));
    }
    const auto output = lines_of(result.out);
    ASSERT_EQ(output.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        const auto reply = nlohmann::json::parse(output[i]);
        EXPECT_EQ(reply.at("text"), expected[i].at("text"));
        EXPECT_EQ(reply.at("ids"), expected[i].at("ids")) << expected[i].at("text");
        EXPECT_EQ(reply.at("context"), expected[i].at("context77")) << expected[i].at("text");
    }
}

TEST(TokenizeCommand, JsonLinesErrorsNameTheLine) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = mclip::testing::make_temp_dir("mclip-tokenize");
    const auto input = dir / "input.jsonl";
    std::ofstream(input) << "{\"text\": \"a cat\"}\n\n{\"caption\": \"a dog\"}\n";
    const auto missing_text = run_command(tokenize_command(vocabulary_option(fixtures) + " --jsonl < " + shell_quote(input.string())));
    EXPECT_NE(missing_text.exit_code, 0);
    EXPECT_NE(missing_text.err.find("line 3"), std::string::npos) << missing_text.err;
    EXPECT_NE(missing_text.err.find("\"text\""), std::string::npos) << missing_text.err;
    EXPECT_EQ(lines_of(missing_text.out).size(), 1u);  // the first line was answered

    std::ofstream(input) << "{\"text\": \"a cat\"}\n{\"text\": \"unterminated\n";
    const auto bad_json = run_command(tokenize_command(vocabulary_option(fixtures) + " --jsonl < " + shell_quote(input.string())));
    EXPECT_NE(bad_json.exit_code, 0);
    EXPECT_NE(bad_json.err.find("line 2"), std::string::npos) << bad_json.err;
    EXPECT_NE(bad_json.err.find("JSON"), std::string::npos) << bad_json.err;

    // A line over the 1 MiB request limit is refused, not buffered whole.
    std::ofstream(input) << "{\"text\": \"a cat\"}\n{\"text\": \"" << std::string(2 << 20, 'a') << "\"}\n";
    const auto too_long = run_command(tokenize_command(vocabulary_option(fixtures) + " --jsonl < " + shell_quote(input.string())));
    EXPECT_NE(too_long.exit_code, 0);
    EXPECT_NE(too_long.err.find("line 2: longer than 1048576 bytes"), std::string::npos) << too_long.err;
    EXPECT_EQ(lines_of(too_long.out).size(), 1u);
    std::filesystem::remove_all(dir);
}

TEST(TokenizeCommand, UsesTheTokenizerStoredInAModelFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = mclip::testing::make_temp_dir("mclip-tokenize-model");
    const auto tokenizer = mclip::Tokenizer::from_file(fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz");
    mclip::GgufWriter with_tokenizer;
    with_tokenizer.set_string_array("tokenizer.ggml.merges", tokenizer.merges());
    with_tokenizer.write(dir / "with.gguf");
    const auto result = run_command(tokenize_command(" --model " + shell_quote((dir / "with.gguf").string()) + " 'a photo of a cat'"));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, "49406 320 1125 539 320 2368 49407\n");

    mclip::GgufWriter without_tokenizer;
    without_tokenizer.set_string("general.name", "no tokenizer");
    without_tokenizer.write(dir / "without.gguf");
    const auto missing = run_command(tokenize_command(" --model " + shell_quote((dir / "without.gguf").string()) + " x"));
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_NE(missing.err.find("no tokenizer"), std::string::npos) << missing.err;
    std::filesystem::remove_all(dir);
}

TEST(TokenizeCommand, RejectsMissingInputsAndBadVocabularies) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    EXPECT_NE(run_command(tokenize_command(vocabulary_option(fixtures))).exit_code, 0);
    EXPECT_NE(run_command(tokenize_command(" 'a cat'")).exit_code, 0);
    const auto dir = mclip::testing::make_temp_dir("mclip-tokenize-bad");
    std::ofstream(dir / "bad.txt.gz") << "\x1F\x8B not really gzip";
    const auto bad = run_command(tokenize_command(" --vocab " + shell_quote((dir / "bad.txt.gz").string()) + " x"));
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("bad.txt.gz"), std::string::npos) << bad.err;
    std::filesystem::remove_all(dir);
}

}  // namespace
