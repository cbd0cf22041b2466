// Reading the files a CLIP vocabulary comes in.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mclip::clip_text {

// The merges CLIP uses: 49152 - 256 - 2 (its vocabulary was sized as 49152 minus the 256 byte
// symbols and the 2 special tokens, and the byte symbols count twice, with and without "</w>").
constexpr size_t kClipMergeCount = 48894;

// The first kClipMergeCount merge lines after the '#version' header of a merges list, normalized
// to "a b": CLIP's bpe_simple_vocab_16e6.txt (gzip-compressed or not) or Hugging Face's
// merges.txt, both read as open_clip and Hugging Face read them.
std::vector<std::string> read_merges_file(const std::filesystem::path& path);

// Hugging Face's vocab.json: (token, id) pairs.
std::vector<std::pair<std::string, int64_t>> read_vocab_json(const std::filesystem::path& path);

}  // namespace mclip::clip_text
