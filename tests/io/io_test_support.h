// Small helpers shared by the file-format tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "common/error.h"

namespace mclip::testing {

inline std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Removes the old file first: replacing one by truncation makes ext4 flush it to disk, which
// turns a loop of thousands of rewrites from milliseconds into minutes.
inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
    std::filesystem::remove(path);
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the mclip::Error that f() throws; a test failure if it throws none.
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected an mclip::Error";
    return "";
}

}  // namespace mclip::testing
