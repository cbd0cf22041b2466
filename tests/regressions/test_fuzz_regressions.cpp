// Replays every fuzz seed (fuzz/corpus/<harness>/) and every input a fuzzer ever crashed on
// (tests/regressions/<harness>/) through the harnesses' own entry points, compiled here without
// libFuzzer: each input must end in success or a clean mclip::Error. Under the sanitizer build
// (scripts/sanitize.sh) this also re-checks them for memory errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz_support.h"

namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> inputs_in(const fs::path& dir) {
    std::vector<fs::path> inputs;
    if (!fs::is_directory(dir)) return inputs;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
    }
    std::sort(inputs.begin(), inputs.end());
    return inputs;
}

std::vector<std::string> harness_names() {
    std::vector<std::string> names;
    for (const auto& [name, entry] : mclip::fuzz::entry_points()) names.push_back(name);
    return names;
}

class FuzzRegression : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzRegression, EveryKeptInputEndsCleanly) {
    const std::string& name = GetParam();
    const auto entry = mclip::fuzz::entry_points().at(name);
    std::vector<fs::path> inputs = inputs_in(fs::path(MCLIP_SOURCE_DIR) / "fuzz" / "corpus" / name);
    const std::vector<fs::path> regressions = inputs_in(fs::path(MCLIP_SOURCE_DIR) / "tests" / "regressions" / name);
    inputs.insert(inputs.end(), regressions.begin(), regressions.end());
    ASSERT_FALSE(inputs.empty()) << "no seeds for harness " << name << " in fuzz/corpus/" << name;
    for (const auto& input : inputs) {
        SCOPED_TRACE(input.string());
        const std::vector<uint8_t> bytes = read_bytes(input);
        // The entry point swallows mclip::Error; anything else escaping is the failure.
        EXPECT_NO_THROW(entry(bytes));
    }
}

INSTANTIATE_TEST_SUITE_P(Harnesses, FuzzRegression, ::testing::ValuesIn(harness_names()),
                         [](const auto& info) { return info.param; });

// A crash input filed under a folder that matches no harness would never be replayed.
TEST(FuzzRegressionLayout, EveryRegressionFolderNamesAHarness) {
    const fs::path root = fs::path(MCLIP_SOURCE_DIR) / "tests" / "regressions";
    const auto& entries = mclip::fuzz::entry_points();
    EXPECT_EQ(entries.size(), 10u) << "a harness was added or removed: update this count and scripts/fuzz.sh";
    for (const auto& entry : fs::directory_iterator(root)) {
        if (!entry.is_directory()) continue;
        EXPECT_TRUE(entries.count(entry.path().filename().string())) << entry.path() << " matches no fuzz harness";
    }
}

}  // namespace
