// PyTorch checkpoints as written by torch.save since PyTorch 1.6: a zip archive holding
//   <archive>/data.pkl     the pickled object (protocol 2 by default)
//   <archive>/data/<key>   one raw little-endian record per storage
//   <archive>/byteorder    "little" or "big" (absent in files older than PyTorch 1.10: little)
//   <archive>/version      the archive format version (not needed to read tensors)
// Inside the pickle, a tensor is torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]), and a storage is a persistent id
// ('storage', torch.<Type>Storage, key, location, numel) naming its record.
//
// The reader interprets only the pickle opcodes and globals that state dicts use. Any other
// global (os.system, a model class of a pickled nn.Module, ...) is refused by name before
// anything is built: nothing in the file is ever executed or trusted.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "tensor/tensor.h"

namespace mclip {

// Reads every tensor of the state dict in a checkpoint, in its stored dtype (f32, f16, bf16,
// f64, i64, i32, i16, i8, u8, bool) and as a contiguous row-major copy (views, transposes and
// shared storages are resolved). `key` selects a state dict nested in a top-level dict (e.g.
// "state_dict"); when empty, a top-level dict of tensors is taken as is, otherwise the one
// top-level entry holding a dict of tensors (preferring "state_dict", "model" and
// "model_state_dict" when several do). Throws Error naming the file and the reason for the
// legacy pre-1.6 format, corrupt or truncated archives, and refused pickle content.
TensorMap read_pytorch_checkpoint(const std::filesystem::path& path, const std::string& key = "");

// Format detection by content. `head` is the start of the file (4 KiB is enough).
// A torch.save zip archive: a zip local file header whose first entry is <archive>/data.pkl.
bool looks_like_pytorch_zip(std::span<const std::byte> head);
// The pre-1.6 format: a raw pickle stream that opens with torch's magic number.
bool looks_like_legacy_pytorch(std::span<const std::byte> head);

}  // namespace mclip
