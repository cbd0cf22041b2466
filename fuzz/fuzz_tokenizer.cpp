// Text as `mclip tokenize`, `classify --labels` and the text encoder take it: the ftfy-style
// cleanup (HTML unescaping, mojibake repair, C1 controls, normalization), lowercasing,
// pre-tokenization and byte-pair encoding. Each stage is also run on its own so that a finding
// names the stage.
#include "clip_vocabulary.h"
#include "tokenizer/html_unescape.h"
#include "tokenizer/mojibake.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/text_cleanup.h"
#include "tokenizer/unicode_text.h"

#include <string_view>

namespace {

void tokenizer(std::span<const uint8_t> bytes) {
    namespace text = mclip::clip_text;
    const std::string_view utf8(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    mclip::fuzz::expect_clean([&] {
        const std::u32string decoded = text::decode_utf8_lossy(utf8);
        (void)text::decode_utf8_strict(utf8);
        (void)text::html_unescape(decoded);
        (void)text::ftfy_unescape_html(decoded);
        (void)text::is_mojibake(decoded);
        (void)text::fix_encoding(decoded);
        (void)text::fix_c1_controls(decoded);
        (void)text::python_lower(decoded);
        (void)text::normalize_nfkc(decoded);
        const std::string cleaned = text::clean_text(utf8);
        std::vector<std::string_view> words;
        text::split_words(cleaned, words);

        const mclip::Tokenizer& clip = mclip::fuzz::clip_tokenizer();
        const std::vector<int32_t> ids = clip.encode(utf8);
        if (ids.size() < 2 || ids.front() != clip.start_id() || ids.back() != clip.end_id()) std::abort();
        for (int32_t id : ids) {
            if (id < 0 || static_cast<size_t>(id) >= clip.vocab_size()) std::abort();
        }
        if (clip.context(utf8).size() != mclip::Tokenizer::kContextLength) std::abort();
    });
}

}  // namespace

MCLIP_FUZZ_TARGET(tokenizer)
