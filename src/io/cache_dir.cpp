// mclip's cache folder (downloads, converted models, text embeddings). Apart from download.cpp
// because builds without downloads (MCLIP_WITH_DOWNLOADS=OFF) still cache text embeddings.
#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "io/download.h"

namespace mclip {

std::filesystem::path default_cache_dir() {
    auto environment_value = [](const char* name) -> const char* {
        const char* value = std::getenv(name);
        return value && *value ? value : nullptr;
    };
    if (const char* dir = environment_value("MCLIP_CACHE")) return dir;
    // The XDG base directory specification ignores relative paths.
    if (const char* dir = environment_value("XDG_CACHE_HOME"); dir && dir[0] == '/') {
        return std::filesystem::path(dir) / "mclip";
    }
    if (const char* home = environment_value("HOME")) return std::filesystem::path(home) / ".cache" / "mclip";
    throw Error(ErrorCode::invalid_argument, "no cache folder: set MCLIP_CACHE or HOME, or pass --cache-dir");
}

}  // namespace mclip
