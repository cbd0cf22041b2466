#include "io/checkpoint.h"

#include <algorithm>

#include "common/error.h"
#include "io/mapped_file.h"
#include "io/pytorch_checkpoint.h"
#include "io/safetensors.h"

namespace mclip {

const char* to_string(CheckpointFormat format) {
    switch (format) {
        case CheckpointFormat::safetensors: return "safetensors";
        case CheckpointFormat::pytorch_zip: return "PyTorch zip";
        case CheckpointFormat::pytorch_legacy: return "legacy PyTorch";
        case CheckpointFormat::unknown: return "unknown";
    }
    return "?";
}

CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path) {
    const auto file = MappedFile::open(path);
    const auto head = file->bytes().first(std::min<size_t>(file->size(), 4096));
    if (looks_like_safetensors(head, file->size())) return CheckpointFormat::safetensors;
    if (looks_like_pytorch_zip(head)) return CheckpointFormat::pytorch_zip;
    if (looks_like_legacy_pytorch(head)) return CheckpointFormat::pytorch_legacy;
    return CheckpointFormat::unknown;
}

TensorMap read_checkpoint(const std::filesystem::path& path, const std::string& key) {
    switch (detect_checkpoint_format(path)) {
        case CheckpointFormat::safetensors:
            if (!key.empty()) {
                throw Error(ErrorCode::invalid_argument, path.string() + ": a safetensors file holds one flat set of tensors; there is no entry '" +
                                                             key + "' to choose");
            }
            return read_safetensors(path).tensors;
        case CheckpointFormat::pytorch_zip:
        case CheckpointFormat::pytorch_legacy:  // refused there, with advice
            return read_pytorch_checkpoint(path, key);
        case CheckpointFormat::unknown: break;
    }
    throw Error(ErrorCode::invalid_input, path.string() + ": not a checkpoint (neither safetensors nor a PyTorch zip archive)");
}

}  // namespace mclip
