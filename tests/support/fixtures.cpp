#include "support/fixtures.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>

namespace mclip::testing {

std::optional<std::filesystem::path> fixtures_dir() {
    std::filesystem::path dir;
    if (const char* env = std::getenv("MCLIP_FIXTURES"); env && *env) {
        dir = env;
    } else {
        dir = std::filesystem::path(MCLIP_SOURCE_DIR) / ".." / "shared" / "fixtures";
    }
    std::error_code ec;
    if (std::filesystem::is_directory(dir / "tokenizer", ec)) return std::filesystem::weakly_canonical(dir);
    return std::nullopt;
}

bool running_under_ci() {
    const char* ci = std::getenv("CI");
    return ci && (std::string(ci) == "true" || std::string(ci) == "1");
}

std::filesystem::path test_models_dir() {
    if (const char* env = std::getenv("MCLIP_TEST_MODELS"); env && *env) return env;
    return std::filesystem::path(MCLIP_BINARY_DIR) / "test-models";
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path mclip_executable() { return MCLIP_EXECUTABLE; }

std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') quoted += "'\\''";
        else quoted += c;
    }
    return quoted + "'";
}

CommandResult run_command(const std::string& command_line) {
    const auto dir = make_temp_dir("mclip-cmd");
    const auto out_path = dir / "out";
    const auto err_path = dir / "err";
    const std::string full = command_line + " >" + shell_quote(out_path.string()) + " 2>" + shell_quote(err_path.string());
    const int status = std::system(full.c_str());
    auto slurp = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    };
    CommandResult result{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out_path), slurp(err_path)};
    std::filesystem::remove_all(dir);
    return result;
}

ScopedEnv::ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
}

}  // namespace mclip::testing
