// Shared pieces of the libFuzzer harnesses (fuzz/fuzz_<name>.cpp).
//
// Each harness defines one entry point, `void <name>(std::span<const uint8_t>)`, that feeds the
// bytes to the same library function the mclip command uses and swallows only mclip::Error: a
// clean error is the expected answer to hostile input. Anything else (a crash, a sanitizer
// report, another exception type escaping, a leak) is a finding.
//
// MCLIP_FUZZ_TARGET(name) turns the entry point into LLVMFuzzerTestOneInput for the fuzzer build,
// and into an entry of a name -> function table when the file is compiled into the regression
// test (tests/regressions), which replays the seed corpora and every saved crash input through
// the very same code in the normal test suite.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "mclip/error.h"

namespace mclip::fuzz {

using EntryPoint = void (*)(std::span<const uint8_t>);

inline std::map<std::string, EntryPoint>& entry_points() {
    static std::map<std::string, EntryPoint> table;
    return table;
}

struct Registration {
    Registration(const char* name, EntryPoint entry) { entry_points()[name] = entry; }
};

// Runs `body`, accepting a clean mclip::Error as the answer to bad input. With
// MCLIP_FUZZ_VERBOSE set, the error is printed (to see what a saved input runs into).
template <typename Body>
void expect_clean(Body&& body) {
    try {
        body();
    } catch (const mclip::Error& e) {
        static const bool verbose = std::getenv("MCLIP_FUZZ_VERBOSE") != nullptr;
        if (verbose) std::fprintf(stderr, "mclip::Error: %s\n", e.what());
    }
}

// The parsers under test open files by path (they map them), so each input is written to one
// scratch file per process, in /dev/shm when it exists so that no disk is touched.
class ScratchFile {
public:
    explicit ScratchFile(const std::string& suffix) {
        const std::filesystem::path dir = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
        path_ = dir / ("mclip-fuzz-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + suffix);
    }
    ~ScratchFile() {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;

    // Replaces the file's content with `bytes` and returns its path.
    const std::filesystem::path& write(std::span<const uint8_t> bytes) {
        FILE* f = std::fopen(path_.c_str(), "wb");
        if (!f) std::abort();  // the harness's own environment is broken, not the parser
        if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
        if (std::fclose(f) != 0) std::abort();
        return path_;
    }
    const std::filesystem::path& path() const { return path_; }

private:
    static int& counter() {
        static int n = 0;
        return n;
    }
    std::filesystem::path path_;
};

// The reference fixtures (../shared/fixtures beside the checkout, or $MCLIP_FIXTURES), used by
// harnesses that need a real vocabulary; empty when absent.
inline std::filesystem::path fixtures_dir() {
    if (const char* env = std::getenv("MCLIP_FIXTURES"); env && *env) return env;
#ifdef MCLIP_FUZZ_DEFAULT_FIXTURES
    if (std::filesystem::is_directory(MCLIP_FUZZ_DEFAULT_FIXTURES)) return MCLIP_FUZZ_DEFAULT_FIXTURES;
#endif
    return {};
}

}  // namespace mclip::fuzz

#ifdef MCLIP_FUZZ_REGRESSION
#define MCLIP_FUZZ_TARGET(name) \
    static const ::mclip::fuzz::Registration mclip_fuzz_registration_##name(#name, &name);
#else
#define MCLIP_FUZZ_TARGET(name)                                                  \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {    \
        name(std::span<const uint8_t>(data, size));                              \
        return 0;                                                                \
    }
#endif
