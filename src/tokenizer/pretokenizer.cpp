#include "tokenizer/pretokenizer.h"

#include <array>
#include <span>

#include "tokenizer/unicode_text.h"

namespace mclip::clip_text {
namespace {

enum class CharacterKind { letter, number, space, other };

CharacterKind kind_of(char32_t c) {
    if (is_letter(c)) return CharacterKind::letter;
    if (is_number(c)) return CharacterKind::number;
    if (is_python_space(c)) return CharacterKind::space;
    return CharacterKind::other;
}

// Bytes of `literal` matched case-insensitively at text[position], or 0.
size_t match_literal(std::string_view text, size_t position, std::u32string_view literal) {
    size_t end = position;
    for (char32_t expected : literal) {
        if (end >= text.size()) return 0;
        if (!equals_ignoring_case(next_code_point(text, end), expected)) return 0;
    }
    return end - position;
}

// The alternatives before the character classes: the two special tokens and the contractions.
size_t match_literals(std::string_view text, size_t position) {
    static constexpr std::array<std::u32string_view, 2> kSpecialTokens = {U"<start_of_text>", U"<end_of_text>"};
    static constexpr std::array<std::u32string_view, 7> kContractions = {U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};
    const char first = text[position];
    if (first != '<' && first != '\'') return 0;
    for (auto literal : first == '<' ? std::span<const std::u32string_view>(kSpecialTokens)
                                     : std::span<const std::u32string_view>(kContractions)) {
        if (const size_t length = match_literal(text, position, literal)) return length;
    }
    return 0;
}

}  // namespace

void split_words(std::string_view text, std::vector<std::string_view>& words) {
    size_t position = 0;
    while (position < text.size()) {
        if (const size_t length = match_literals(text, position)) {
            words.push_back(text.substr(position, length));
            position += length;
            continue;
        }
        size_t end = position;
        const CharacterKind kind = kind_of(next_code_point(text, end));
        if (kind == CharacterKind::space) {
            position = end;
            continue;
        }
        // Letters and "other" characters form runs; each number is a word of its own.
        if (kind != CharacterKind::number) {
            while (end < text.size()) {
                size_t next = end;
                if (kind_of(next_code_point(text, next)) != kind) break;
                end = next;
            }
        }
        words.push_back(text.substr(position, end - position));
        position = end;
    }
}

}  // namespace mclip::clip_text
