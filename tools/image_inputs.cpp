#include "image_inputs.h"

#include <algorithm>
#include <cctype>

#include "mclip/error.h"

namespace mclip::tools {
namespace {

bool has_image_extension(const std::filesystem::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

}  // namespace

std::vector<std::filesystem::path> collect_image_paths(const std::vector<std::string>& inputs) {
    std::vector<std::filesystem::path> paths;
    for (const auto& input : inputs) {
        std::error_code ec;
        const std::filesystem::path p(input);
        if (std::filesystem::is_directory(p, ec)) {
            std::vector<std::filesystem::path> found;
            for (auto it = std::filesystem::recursive_directory_iterator(p, std::filesystem::directory_options::skip_permission_denied, ec);
                 it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
                if (ec) break;
                if (it->is_regular_file(ec) && has_image_extension(it->path())) found.push_back(it->path());
            }
            std::sort(found.begin(), found.end());
            paths.insert(paths.end(), found.begin(), found.end());
        } else if (std::filesystem::exists(p, ec)) {
            paths.push_back(p);
        } else {
            throw Error(ErrorCode::io, input + ": no such file or directory");
        }
    }
    return paths;
}

}  // namespace mclip::tools

