// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}),
// then the raw little-endian tensor data; offsets are relative to the end of the header.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace mclip {

struct SafetensorsFile {
    TensorMap tensors;                            // views into the memory-mapped file
    std::map<std::string, std::string> metadata;  // the "__metadata__" entries
};

// Maps and validates a file: every tensor's offsets, dtype and size are checked against the
// file; errors name the file and, where it applies, the tensor.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

// True when the first bytes look like a safetensors header (used to detect formats by content).
bool looks_like_safetensors(std::span<const std::byte> head, uint64_t file_size);

// Writes tensors (any dtype) atomically.
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mclip
