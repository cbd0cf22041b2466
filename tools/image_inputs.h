// Image inputs of the CLI commands: files and folders in, preprocessed model inputs out.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "models/config.h"
#include "tensor/tensor.h"

namespace mclip::tools {

// Files are taken as given; folders are walked recursively for files with an image extension
// (jpg, jpeg, png, webp, case-insensitive), sorted by path. A missing path is an error.
std::vector<std::filesystem::path> collect_image_paths(const std::vector<std::string>& inputs);

// Decodes image files and preprocesses them the way the model file says (size, crop, mean/std).
class ImageLoader {
public:
    ImageLoader(const PreprocessConfig& config, bool apply_exif_orientation);
    // [1, 3, size, size] float32; throws Error naming the file when it cannot be decoded.
    Tensor load(const std::filesystem::path& path);
    // [n, 3, size, size] for several files at once.
    Tensor load_all(const std::vector<std::filesystem::path>& paths);

private:
    int size_;
    bool apply_exif_orientation_;
    Preprocessor preprocessor_;
};

}  // namespace mclip::tools
