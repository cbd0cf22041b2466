// The Unicode operations the CLIP tokenizer needs, with the semantics of Python 3 (which the
// reference tokenizer runs in). Character properties come from utf8proc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mclip::clip_text {

constexpr char32_t kReplacementCharacter = 0xFFFD;

// Decodes UTF-8 as Python's bytes.decode("utf-8", errors="replace") does: each maximal ill-formed
// subsequence (a stray byte, a truncated sequence, an overlong form, a surrogate) becomes U+FFFD.
std::u32string decode_utf8_lossy(std::string_view bytes);
// Python's strict decoder: nullopt when the bytes are not well-formed UTF-8.
std::optional<std::u32string> decode_utf8_strict(std::string_view bytes);
// The code point at utf8[position] (U+FFFD for an ill-formed sequence); advances `position`.
char32_t next_code_point(std::string_view utf8, size_t& position);
void append_utf8(std::string& out, char32_t code_point);
std::string encode_utf8(std::u32string_view text);

// str.isspace(): bidirectional class WS, B or S, or general category Zs. This is the set that
// str.split() and str.strip() use, and the `\s` of Python's `re` for str patterns.
bool is_python_space(char32_t c);
bool is_letter(char32_t c);         // \p{L}
bool is_number(char32_t c);         // \p{N}
bool is_decimal_digit(char32_t c);  // \p{Nd}, the `\d` of Python's `re`
// The `\w` of Python's `re` for str patterns: str.isalnum() or '_'.
bool is_word_character(char32_t c);

// Whether `c` matches the ASCII lowercase letter `letter` in a case-insensitive pattern of the
// `regex` module (simple case folding): 's' matches 'S' and also 'ſ' (U+017F).
bool equals_ignoring_case(char32_t c, char32_t letter);

// str.lower(): full lowercase mapping, including U+0130 -> "i\u0307" and the final-sigma rule.
std::u32string python_lower(std::u32string_view text);
// unicodedata.normalize("NFC", text).
std::u32string normalize_nfc(std::u32string_view text);
// unicodedata.normalize("NFKC", text).
std::u32string normalize_nfkc(std::u32string_view text);

}  // namespace mclip::clip_text
