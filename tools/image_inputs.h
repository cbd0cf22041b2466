// Image inputs of the CLI commands: the files named, and the images inside the folders named.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mclip::tools {

// Files are taken as given; folders are walked recursively for files with an image extension
// (jpg, jpeg, png, webp, case-insensitive), sorted by path. A missing path is an error.
std::vector<std::filesystem::path> collect_image_paths(const std::vector<std::string>& inputs);

}  // namespace mclip::tools
