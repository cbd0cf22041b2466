// Where tests find the reference data (../shared/fixtures beside the checkout, or
// $MCLIP_FIXTURES) and the models converted from it at test time ($MCLIP_TEST_MODELS or the
// build's test-models folder).
//
// Absent reference data makes parity tests skip with a message on a user's checkout, and fail
// under CI (CI=true), so that a wrong path can never pass silently.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

namespace mclip::testing {

// The fixtures directory if it exists, else nullopt.
std::optional<std::filesystem::path> fixtures_dir();
// True when running under CI (CI=true): missing data must fail there, not skip.
bool running_under_ci();
// The folder holding test models converted from the fixture weights (see tests/models).
std::filesystem::path test_models_dir();
// A fresh empty temporary directory for one test, removed by the caller or left in /tmp.
std::filesystem::path make_temp_dir(const std::string& prefix);
// A fresh empty temporary directory removed with everything in it when this goes out of scope.
class TempDir {
public:
    explicit TempDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};
// The built mclip executable (for tests that run the tool end to end).
std::filesystem::path mclip_executable();

struct CommandResult {
    int exit_code;
    std::string out;  // stdout
    std::string err;  // stderr
};
// Runs a shell command line, capturing stdout and stderr.
CommandResult run_command(const std::string& command_line);
// Single-quotes a string for the shell.
std::string shell_quote(const std::string& text);

// Sets (value) or unsets (nullptr) an environment variable for one test, restored afterwards.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value);
    ~ScopedEnv();
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

}  // namespace mclip::testing

// Declares `var` as the fixtures path, or skips the current test when absent (fails under CI).
#define MCLIP_FIXTURES_OR_SKIP(var)                                                                \
    std::filesystem::path var;                                                                     \
    do {                                                                                           \
        auto found_ = ::mclip::testing::fixtures_dir();                                            \
        if (!found_) {                                                                             \
            if (::mclip::testing::running_under_ci()) {                                            \
                FAIL() << "reference fixtures not found (set MCLIP_FIXTURES); required under CI";  \
            }                                                                                      \
            GTEST_SKIP() << "reference fixtures not found (set MCLIP_FIXTURES to ../shared/fixtures)"; \
        }                                                                                          \
        var = *found_;                                                                             \
    } while (0)
