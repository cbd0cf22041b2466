// CLIP's pre-tokenizer: splits cleaned text into the words that byte-pair encoding works on.
// It matches what open_clip finds with the `regex` module, case-insensitively:
//   <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// Alternatives are tried in that order at each position; whitespace between matches is dropped.
#pragma once

#include <string_view>
#include <vector>

namespace mclip::clip_text {

// Appends the words of `text` (valid UTF-8) to `words`, as views into `text`.
void split_words(std::string_view text, std::vector<std::string_view>& words);

}  // namespace mclip::clip_text
