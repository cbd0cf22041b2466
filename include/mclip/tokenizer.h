// The CLIP byte-level BPE tokenizer, identical to open_clip's SimpleTokenizer (the one MobileCLIP
// was trained with):
//
//   auto tokenizer = mclip::Tokenizer::from_file("bpe_simple_vocab_16e6.txt.gz");
//   std::vector<int32_t> ids = tokenizer.context("a photo of a cat");
//   // {49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, ...}: 77 ids
//
// Text is cleaned as open_clip does it (ftfy's fix_text, HTML unescaping, whitespace collapsing,
// Python's full-Unicode lowercasing), split into words by CLIP's pattern, and each word's UTF-8
// bytes are merged by byte-pair encoding with "</w>" marking the word end. Invalid UTF-8 is not
// an error: each ill-formed sequence becomes U+FFFD, as Python's errors="replace" decoding does.
//
// The vocabulary is 256 byte symbols, the same with "</w>", one symbol per merge in rank order,
// then <start_of_text> and <end_of_text> (49,408 entries for CLIP's 48,894 merges).
//
// All const member functions may be called from several threads at once; the per-word merge
// cache that makes repeated words cheap is shared and locked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mclip/export.h"

namespace mclip {

class MCLIP_API Tokenizer {
public:
    static constexpr int kContextLength = 77;

    // Reads a vocabulary: CLIP's merges list (`bpe_simple_vocab_16e6.txt.gz`, gzip detected by its
    // signature, or uncompressed), or Hugging Face's pair given as the `vocab.json` path or a
    // directory holding `vocab.json` and `merges.txt` (vocab.json must agree with the merges).
    // Like open_clip, it uses the first 48,894 merges after the '#version' header line. Throws
    // Error naming the file: missing or unreadable (io), corrupt gzip, too few merges, or a
    // vocab.json that disagrees (invalid_input).
    static Tokenizer from_file(const std::filesystem::path& path);
    // Builds the tokenizer from merge lines "a b" in rank order (as merges() returns them). Throws
    // Error(invalid_input) for a line that is not two symbols of the vocabulary built so far.
    static Tokenizer from_merges(std::vector<std::string> merges);
    // The tokenizer stored in a GGUF file (tokenizer.ggml.merges: an mclip model file, or a file
    // holding only the vocabulary). Throws Error(invalid_input) when the file has none.
    static Tokenizer from_model_file(const std::filesystem::path& path);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // The merge lines, in rank order.
    const std::vector<std::string>& merges() const;
    // Each id's symbol: byte symbols are printable characters standing for bytes (space is "Ġ"),
    // word ends carry "</w>", and the last two are "<start_of_text>" and "<end_of_text>".
    const std::vector<std::string>& tokens() const;
    size_t vocab_size() const;
    int32_t start_id() const;
    int32_t end_id() const;

    // start_id, the ids of the text, end_id; never truncated.
    std::vector<int32_t> encode(std::string_view text) const;
    // What the text encoder is fed: encode(text) cut to `length` ids with the last one replaced by
    // end_id when longer, else padded with 0. Throws Error(invalid_argument) for length < 1.
    std::vector<int32_t> context(std::string_view text, int length = kContextLength) const;
    // context() of each text, row after row: texts.size() x length ids.
    std::vector<int32_t> context_batch(std::span<const std::string> texts, int length = kContextLength) const;

    // Forgets the cached word encodings (to measure the cold speed, or to free memory).
    void clear_cache() const;

private:
    struct State;
    explicit Tokenizer(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace mclip
