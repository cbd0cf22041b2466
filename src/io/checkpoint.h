// Model checkpoints in any format mclip reads, told apart by content rather than by file name:
// safetensors, and PyTorch's torch.save zip archives. The pre-1.6 PyTorch format is recognised
// only to be refused with advice.
#pragma once

#include <filesystem>
#include <string>

#include "tensor/tensor.h"

namespace mclip {

enum class CheckpointFormat { safetensors, pytorch_zip, pytorch_legacy, unknown };

const char* to_string(CheckpointFormat format);

// Looks at the first bytes of the file; throws Error(io) when it cannot be read.
CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path);

// Every tensor of the checkpoint, in its stored dtype (Tensor::to_f32 widens). `key` selects a
// state dict nested inside a PyTorch checkpoint (see read_pytorch_checkpoint); a safetensors file
// is flat, so a key is refused there. Throws Error naming the file for anything else.
TensorMap read_checkpoint(const std::filesystem::path& path, const std::string& key = "");

}  // namespace mclip
