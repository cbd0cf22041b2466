// The tokenizer against open_clip's golden tokenizations (fixtures/tokenizer/cases.jsonl), plus
// vocabulary loading, truncation, special tokens, invalid UTF-8 and concurrency.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench_tokenizer.h"
#include "common/error.h"
#include "support/fixtures.h"
#include "mclip/tokenizer.h"

using mclip::Error;
using mclip::ErrorCode;
using mclip::Tokenizer;

namespace {

struct GoldenCase {
    std::string text;
    std::vector<int32_t> ids;
    std::vector<int32_t> context;
};

std::filesystem::path vocabulary_path(const std::filesystem::path& fixtures) {
    return fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz";
}

std::vector<GoldenCase> read_cases(const std::filesystem::path& fixtures) {
    std::ifstream in(fixtures / "tokenizer" / "cases.jsonl");
    std::vector<GoldenCase> cases;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto json = nlohmann::json::parse(line);
        cases.push_back({json.at("text").get<std::string>(), json.at("ids").get<std::vector<int32_t>>(),
                         json.at("context77").get<std::vector<int32_t>>()});
    }
    return cases;
}

// The lines of the gzip file, read here with zlib independently of the tokenizer's loader.
std::vector<std::string> gunzip_lines(const std::filesystem::path& path) {
    gzFile file = gzopen(path.c_str(), "rb");
    EXPECT_NE(file, nullptr);
    std::string text;
    char buffer[1 << 16];
    int n;
    while ((n = gzread(file, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<size_t>(n));
    gzclose(file);
    std::vector<std::string> lines;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t end = std::min(text.find('\n', start), text.size());
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

void write_gzip(const std::filesystem::path& path, const std::string& text) {
    gzFile file = gzopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(gzwrite(file, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
    gzclose(file);
}

void write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// GPT-2's byte-to-unicode characters, by definition: bytes 33-126, 161-172 and 174-255 stand for
// themselves, the other 68 in increasing order for U+0100 + n. Returned as UTF-8, per byte.
std::vector<std::string> byte_symbols_by_definition() {
    std::vector<std::string> symbols(256);
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        const int c = printable ? b : 256 + shifted++;
        if (c < 0x80) {
            symbols[b].push_back(static_cast<char>(c));
        } else {
            symbols[b].push_back(static_cast<char>(0xC0 | (c >> 6)));
            symbols[b].push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
    return symbols;
}

// CLIP's vocabulary built here from its definition, independently of the tokenizer: the 256 byte
// symbols in code point order, the same with "</w>", each merge joined, then the two specials.
std::vector<std::string> vocabulary_by_definition(const std::vector<std::string>& merge_lines) {
    const auto symbols = byte_symbols_by_definition();
    std::vector<std::pair<int, std::string>> ordered;
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        ordered.emplace_back(printable ? b : 256 + shifted++, symbols[b]);
    }
    std::sort(ordered.begin(), ordered.end());
    std::vector<std::string> vocabulary;
    for (const auto& entry : ordered) vocabulary.push_back(entry.second);
    for (const auto& entry : ordered) vocabulary.push_back(entry.second + "</w>");
    for (const auto& line : merge_lines) {
        const size_t space = line.find(' ');
        vocabulary.push_back(line.substr(0, space) + line.substr(space + 1));
    }
    vocabulary.push_back("<start_of_text>");
    vocabulary.push_back("<end_of_text>");
    return vocabulary;
}

// The bytes a sequence of ids stands for, decoded here by the definition: each symbol's characters
// map back to bytes, and "</w>" ends a word.
std::string decode_by_definition(const std::vector<std::string>& vocabulary, const std::vector<int32_t>& ids) {
    const auto symbols = byte_symbols_by_definition();
    std::map<std::string, char> byte_of_symbol;
    for (int b = 0; b < 256; ++b) byte_of_symbol[symbols[b]] = static_cast<char>(b);
    std::string bytes;
    for (int32_t id : ids) {
        std::string symbol = vocabulary.at(static_cast<size_t>(id));
        const bool word_end = symbol.size() > 4 && symbol.ends_with("</w>");
        if (word_end) symbol.resize(symbol.size() - 4);
        for (size_t i = 0; i < symbol.size();) {
            const size_t length = static_cast<unsigned char>(symbol[i]) < 0x80 ? 1 : 2;
            bytes.push_back(byte_of_symbol.at(symbol.substr(i, length)));
            i += length;
        }
        if (word_end) bytes.push_back(' ');
    }
    return bytes;
}

// open_clip's SimpleTokenizer.bpe as written in Python, on strings: the reference the
// tokenizer's queue-based merging must reproduce.
std::vector<std::string> reference_bpe(const std::map<std::pair<std::string, std::string>, int>& ranks,
                                       const std::string& word) {
    const auto symbols = byte_symbols_by_definition();
    std::vector<std::string> parts;
    for (unsigned char byte : word) parts.push_back(symbols[byte]);
    parts.back() += "</w>";
    while (parts.size() > 1) {
        const std::pair<std::string, std::string>* best = nullptr;
        int best_rank = 0;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            const auto it = ranks.find({parts[i], parts[i + 1]});
            if (it != ranks.end() && (best == nullptr || it->second < best_rank)) {
                best = &it->first;
                best_rank = it->second;
            }
        }
        if (best == nullptr) break;
        const auto [first, second] = *best;
        std::vector<std::string> merged;
        for (size_t i = 0; i < parts.size(); ++i) {
            if (i + 1 < parts.size() && parts[i] == first && parts[i + 1] == second) {
                merged.push_back(first + second);
                ++i;
            } else {
                merged.push_back(parts[i]);
            }
        }
        parts.swap(merged);
    }
    return parts;
}

class TokenizerTest : public ::testing::Test {
protected:
    void SetUp() override {
        MCLIP_FIXTURES_OR_SKIP(found);
        fixtures_ = found;
        if (!shared_) shared_.emplace(Tokenizer::from_file(vocabulary_path(fixtures_)));
    }
    const Tokenizer& tokenizer() const { return *shared_; }
    std::filesystem::path fixtures_;
    static std::optional<Tokenizer> shared_;
};
std::optional<Tokenizer> TokenizerTest::shared_;

TEST_F(TokenizerTest, MatchesEveryGoldenCase) {
    const auto cases = read_cases(fixtures_);
    ASSERT_GE(cases.size(), 100u);
    for (const auto& golden : cases) {
        EXPECT_EQ(tokenizer().encode(golden.text), golden.ids) << "text: " << golden.text;
        EXPECT_EQ(tokenizer().context(golden.text), golden.context) << "text: " << golden.text;
    }
}

TEST_F(TokenizerTest, VocabularyHasClipShape) {
    EXPECT_EQ(tokenizer().vocab_size(), 49408u);
    EXPECT_EQ(tokenizer().start_id(), 49406);
    EXPECT_EQ(tokenizer().end_id(), 49407);
    const auto lines = gunzip_lines(vocabulary_path(fixtures_));
    ASSERT_GT(lines.size(), 48895u);
    const std::vector<std::string> expected_merges(lines.begin() + 1, lines.begin() + 48895);
    EXPECT_EQ(tokenizer().merges(), expected_merges);
    EXPECT_EQ(tokenizer().tokens(), vocabulary_by_definition(expected_merges));
}

TEST_F(TokenizerTest, FromMergesRebuildsTheSameTokenizer) {
    const Tokenizer rebuilt = Tokenizer::from_merges(tokenizer().merges());
    for (const auto& golden : read_cases(fixtures_)) EXPECT_EQ(rebuilt.encode(golden.text), golden.ids) << golden.text;
}

TEST_F(TokenizerTest, IdsDecodeBackToTheCleanedText) {
    // Byte-pair merging never loses or reorders bytes: decoding the ids by the vocabulary's
    // definition gives each word followed by a space.
    const std::vector<std::pair<std::string, std::string>> texts = {
        {"a photo of a Cat.", "a photo of a cat . "},
        {"emoji 😀🚀🐱 test", "emoji 😀🚀🐱 test "},
        {"한국어 사물 인식 앱", "한국어 사물 인식 앱 "},
        {"中文测试 日本語のテキスト", "中文测试 日本語のテキスト "},
        {"Crème Brûlée à São Paulo", "crème brûlée à são paulo "},
        {"pi is 3.14", "pi is 3 . 1 4 "},
        {"dog's bone", "dog 's bone "},
    };
    const auto vocabulary = vocabulary_by_definition(tokenizer().merges());
    for (const auto& [text, words] : texts) {
        auto ids = tokenizer().encode(text);
        ASSERT_GE(ids.size(), 2u);
        EXPECT_EQ(ids.front(), 49406);
        EXPECT_EQ(ids.back(), 49407);
        ids = std::vector<int32_t>(ids.begin() + 1, ids.end() - 1);
        EXPECT_EQ(decode_by_definition(vocabulary, ids), words) << text;
    }
}

TEST_F(TokenizerTest, DigitsAreSingleTokens) {
    // Each digit is a word of its own: the symbol "<digit></w>", whose id is 256 + the digit
    // byte's position among the printable bytes (which start at '!' = 33).
    EXPECT_EQ(tokenizer().encode("2024"), (std::vector<int32_t>{49406, 256 + '2' - 33, 256 + '0' - 33, 256 + '2' - 33,
                                                                256 + '4' - 33, 49407}));
    // Other Unicode numbers (\p{N}) are single words too: "½" is its own word.
    const auto half = tokenizer().encode("½");
    EXPECT_EQ(tokenizer().encode("1½2"), (std::vector<int32_t>{49406, 256 + '1' - 33, half[1], 256 + '2' - 33, 49407}));
}

TEST_F(TokenizerTest, MergingMatchesThePythonAlgorithmOnRandomWords) {
    std::map<std::pair<std::string, std::string>, int> ranks;
    for (size_t rank = 0; rank < tokenizer().merges().size(); ++rank) {
        const std::string& line = tokenizer().merges()[rank];
        const size_t space = line.find(' ');
        ranks[{line.substr(0, space), line.substr(space + 1)}] = static_cast<int>(rank);
    }
    std::map<std::string, int32_t> ids;
    for (size_t id = 0; id < tokenizer().tokens().size(); ++id) ids[tokenizer().tokens()[id]] = static_cast<int32_t>(id);
    // Lowercase letters only, so that cleanup leaves each word alone and it stays one word;
    // repeated letters exercise overlapping pairs, long words the merge order.
    const std::vector<std::string> letters = {"a", "e", "n", "s", "t", "r", "o", "l", "é", "ß", "ñ", "日", "本"};
    std::mt19937 random(7);
    for (int trial = 0; trial < 3000; ++trial) {
        std::string word;
        const int length = 1 + static_cast<int>(random() % (trial < 2900 ? 12 : 200));
        const bool repetitive = trial % 5 == 0;
        const std::string repeated = letters[random() % letters.size()];
        for (int i = 0; i < length; ++i) word += repetitive ? repeated : letters[random() % letters.size()];
        std::vector<int32_t> expected = {49406};
        for (const auto& part : reference_bpe(ranks, word)) expected.push_back(ids.at(part));
        expected.push_back(49407);
        ASSERT_EQ(tokenizer().encode(word), expected) << word;
    }
}

TEST_F(TokenizerTest, ContractionsAndPunctuationSplitAsThePatternSays) {
    auto words_of = [&](const std::string& text) {
        const auto ids = tokenizer().encode(text);
        return std::vector<int32_t>(ids.begin() + 1, ids.end() - 1);
    };
    auto concat = [&](std::initializer_list<std::string> words) {
        std::vector<int32_t> all;
        for (const auto& word : words) {
            const auto ids = words_of(word);
            all.insert(all.end(), ids.begin(), ids.end());
        }
        return all;
    };
    EXPECT_EQ(words_of("DON'T"), concat({"don", "'t"}));
    EXPECT_EQ(words_of("they'll we've i'd"), concat({"they", "'ll", "we", "'ve", "i", "'d"}));
    // A run of punctuation swallows the apostrophe, so "'s" is not split off after it.
    EXPECT_EQ(words_of("!!'s"), concat({"!!'", "s"}));
    EXPECT_EQ(words_of("e-mail:x@y.z"), concat({"e", "-", "mail", ":", "x", "@", "y", ".", "z"}));
    // Letter runs include every \p{L}; a combining mark (\p{M}) is not a letter.
    EXPECT_EQ(words_of("naïve"), concat({"naïve"}));
    EXPECT_EQ(words_of("İzmir"), concat({"i", "\u0307", "zmir"}));
}

TEST_F(TokenizerTest, SpecialTokensInTheTextBecomeSpecialIds) {
    EXPECT_EQ(tokenizer().encode("<end_of_text>"), (std::vector<int32_t>{49406, 49407, 49407}));
    // Lowercasing comes first, so an upper-case spelling is the special token too.
    EXPECT_EQ(tokenizer().encode("<START_OF_TEXT>"), (std::vector<int32_t>{49406, 49406, 49407}));
    // The pattern matches "ſ" (long s) for "s" case-insensitively, but only the exact spelling is
    // the special token; this one is encoded as ordinary text.
    const auto long_s = tokenizer().encode("<\u017Ftart_of_text>");
    EXPECT_GT(long_s.size(), 3u);
    EXPECT_EQ(std::count(long_s.begin(), long_s.end(), 49406), 1);
}

TEST_F(TokenizerTest, ContextTruncatesWithEndTokenAndPadsWithZero) {
    std::string long_text;
    for (int i = 0; i < 100; ++i) long_text += "cat ";
    const auto ids = tokenizer().encode(long_text);
    ASSERT_EQ(ids.size(), 102u);
    const auto context = tokenizer().context(long_text);
    ASSERT_EQ(context.size(), 77u);
    EXPECT_EQ(std::vector<int32_t>(context.begin(), context.begin() + 76), std::vector<int32_t>(ids.begin(), ids.begin() + 76));
    EXPECT_EQ(context[76], 49407);

    const auto short_context = tokenizer().context("a cat", 5);
    EXPECT_EQ(short_context, (std::vector<int32_t>{49406, 320, 2368, 49407, 0}));
    EXPECT_EQ(tokenizer().context("a cat", 3), (std::vector<int32_t>{49406, 320, 49407}));
    EXPECT_EQ(tokenizer().context("a cat", 1), (std::vector<int32_t>{49407}));
    EXPECT_THROW(tokenizer().context("a cat", 0), Error);

    const std::vector<std::string> texts = {"a cat", long_text, ""};
    const auto batch = tokenizer().context_batch(texts);
    ASSERT_EQ(batch.size(), 3u * 77u);
    EXPECT_EQ(std::vector<int32_t>(batch.begin(), batch.begin() + 77), tokenizer().context("a cat"));
    EXPECT_EQ(std::vector<int32_t>(batch.begin() + 77, batch.begin() + 154), context);
    EXPECT_EQ(std::vector<int32_t>(batch.begin() + 154, batch.end()), tokenizer().context(""));
}

TEST_F(TokenizerTest, InvalidUtf8BecomesReplacementCharacters) {
    // Python's bytes.decode("utf-8", errors="replace") replaces each maximal ill-formed
    // subsequence with one U+FFFD (these expectations come from Python 3.11).
    EXPECT_EQ(tokenizer().encode("caf\xC3"), tokenizer().encode("caf\uFFFD"));
    EXPECT_EQ(tokenizer().encode("\xE2\x82 x"), tokenizer().encode("\uFFFD x"));
    EXPECT_EQ(tokenizer().encode("\xED\xA0\x80"), tokenizer().encode("\uFFFD\uFFFD\uFFFD"));
    EXPECT_EQ(tokenizer().encode("\xF0\x80\x80\x80"), tokenizer().encode("\uFFFD\uFFFD\uFFFD\uFFFD"));
    EXPECT_EQ(tokenizer().encode("a\x80" "b \xFF\xFE"), tokenizer().encode("a\uFFFDb \uFFFD\uFFFD"));
    EXPECT_EQ(tokenizer().encode(std::string("nul\0byte", 8)), tokenizer().encode("nulbyte"));
}

TEST_F(TokenizerTest, ConcurrentEncodingGivesTheSameIds) {
    const auto cases = read_cases(fixtures_);
    const Tokenizer fresh = Tokenizer::from_merges(tokenizer().merges());
    std::vector<std::thread> threads;
    std::vector<int> mismatches(8, 0);
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int round = 0; round < 3; ++round) {
                for (size_t i = static_cast<size_t>(t); i < cases.size() * 3; i += 3) {
                    const auto& golden = cases[i % cases.size()];
                    if (fresh.encode(golden.text) != golden.ids) ++mismatches[static_cast<size_t>(t)];
                }
                if (t == 0) fresh.clear_cache();
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(mismatches, std::vector<int>(8, 0));
}

TEST_F(TokenizerTest, BenchmarkReportsBothCacheStates) {
    const auto result = mclip::tools::bench_tokenizer(tokenizer(), 500, 2);
    EXPECT_EQ(result.at("prompts").get<int>(), 500);
    EXPECT_GT(result.at("cold_prompts_per_s").get<double>(), 0.0);
    EXPECT_GT(result.at("warm_prompts_per_s").get<double>(), 0.0);
    EXPECT_THROW(mclip::tools::bench_tokenizer(tokenizer(), 0, 1), Error);
}

// ---------------------------------------------------------------------------------------------
// Hugging Face's vocab.json + merges.txt pair, built here from the gzip file.

class HuggingFaceVocabularyTest : public TokenizerTest {
protected:
    void SetUp() override {
        TokenizerTest::SetUp();
        if (IsSkipped()) return;
        dir_ = mclip::testing::make_temp_dir("mclip-hf-vocab");
        const auto lines = gunzip_lines(vocabulary_path(fixtures_));
        merges_.assign(lines.begin() + 1, lines.begin() + 48895);
        std::string merges_text = "#version: 0.2\n";
        for (const auto& line : merges_) merges_text += line + "\n";
        write_text(dir_ / "merges.txt", merges_text);
        vocabulary_ = nlohmann::json::object();
        const auto tokens = vocabulary_by_definition(merges_);
        for (size_t id = 0; id < tokens.size(); ++id) vocabulary_[tokens[id]] = id;
        vocabulary_.erase("<start_of_text>");
        vocabulary_.erase("<end_of_text>");
        vocabulary_["<|startoftext|>"] = 49406;
        vocabulary_["<|endoftext|>"] = 49407;
        write_text(dir_ / "vocab.json", vocabulary_.dump());
    }
    void TearDown() override {
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }
    std::filesystem::path dir_;
    std::vector<std::string> merges_;
    nlohmann::json vocabulary_;
};

TEST_F(HuggingFaceVocabularyTest, LoadsFromDirectoryOrVocabJsonAndTokenizesIdentically) {
    for (const auto& path : {dir_, dir_ / "vocab.json"}) {
        const Tokenizer hf = Tokenizer::from_file(path);
        EXPECT_EQ(hf.merges(), merges_);
        for (const auto& golden : read_cases(fixtures_)) {
            EXPECT_EQ(hf.encode(golden.text), golden.ids) << path << ": " << golden.text;
        }
    }
    // A merges.txt alone is a merges list like the gzip file.
    EXPECT_EQ(Tokenizer::from_file(dir_ / "merges.txt").encode("a photo of a cat"), tokenizer().encode("a photo of a cat"));
}

TEST_F(HuggingFaceVocabularyTest, RejectsAVocabJsonThatDisagreesWithTheMerges) {
    vocabulary_["cat</w>"] = vocabulary_["dog</w>"].get<int>();
    write_text(dir_ / "vocab.json", vocabulary_.dump());
    try {
        Tokenizer::from_file(dir_);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::invalid_input);
        EXPECT_NE(std::string(e.what()).find("vocab.json"), std::string::npos) << e.what();
    }
    write_text(dir_ / "vocab.json", "{\"a\": ");
    EXPECT_THROW(Tokenizer::from_file(dir_), Error);
    std::filesystem::remove(dir_ / "merges.txt");
    try {
        Tokenizer::from_file(dir_ / "vocab.json");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::io);
        EXPECT_NE(std::string(e.what()).find("merges.txt"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------------------------------------
// Bad vocabulary files.

std::string error_of(const std::function<void()>& action, ErrorCode expected_code) {
    try {
        action();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), expected_code) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "expected an error";
    return {};
}

TEST(TokenizerFiles, ErrorsNameTheFileAndTheReason) {
    const auto dir = mclip::testing::make_temp_dir("mclip-bad-vocab");
    const auto missing = dir / "missing.txt.gz";
    EXPECT_NE(error_of([&] { Tokenizer::from_file(missing); }, ErrorCode::io).find(missing.string()), std::string::npos);

    const auto corrupt = dir / "corrupt.txt.gz";
    write_text(corrupt, std::string("\x1F\x8B\x08\x00garbage that is not deflate data", 36));
    const std::string corrupt_error = error_of([&] { Tokenizer::from_file(corrupt); }, ErrorCode::invalid_input);
    EXPECT_NE(corrupt_error.find(corrupt.string()), std::string::npos);
    EXPECT_NE(corrupt_error.find("gzip"), std::string::npos);

    std::string few = "\"bpe_simple_vocab_16e6.txt#version: 0.2\n";
    for (int i = 0; i < 10; ++i) few += "i n\n";
    const auto too_few = dir / "few.txt.gz";
    write_gzip(too_few, few);
    const std::string few_error = error_of([&] { Tokenizer::from_file(too_few); }, ErrorCode::invalid_input);
    EXPECT_NE(few_error.find("48894"), std::string::npos) << few_error;

    const auto truncated = dir / "truncated.txt.gz";
    std::string many = "#version: 0.2\n";
    for (int i = 0; i < 50000; ++i) many += "a b" + std::to_string(i) + "\n";
    write_gzip(truncated, many);
    const std::string whole = [&] {
        std::ifstream in(truncated, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    write_text(truncated, whole.substr(0, whole.size() / 2));
    EXPECT_NE(error_of([&] { Tokenizer::from_file(truncated); }, ErrorCode::invalid_input).find("truncated"),
              std::string::npos);

    const auto headerless = dir / "headerless.txt";
    write_text(headerless, "i n\nt h\n");
    EXPECT_NE(error_of([&] { Tokenizer::from_file(headerless); }, ErrorCode::invalid_input).find("#version"),
              std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST(TokenizerFiles, FromMergesRejectsMalformedMerges) {
    EXPECT_NE(error_of([] { Tokenizer::from_merges({"i n", "in"}); }, ErrorCode::invalid_input).find("merge 1"),
              std::string::npos);
    EXPECT_NE(error_of([] { Tokenizer::from_merges({"i n", "in x y"}); }, ErrorCode::invalid_input).find("merge 1"),
              std::string::npos);
    EXPECT_NE(error_of([] { Tokenizer::from_merges({"i n", "cat s"}); }, ErrorCode::invalid_input).find("'cat'"),
              std::string::npos);
    // A small, valid vocabulary: the byte symbols plus two merges.
    const Tokenizer tiny = Tokenizer::from_merges({"i n", "in g</w>"});
    EXPECT_EQ(tiny.vocab_size(), 512u + 2u + 2u);
    EXPECT_EQ(tiny.start_id(), 514);
    EXPECT_EQ(tiny.end_id(), 515);
}

}  // namespace
