#include "tokenizer/html_unescape.h"

#include <algorithm>
#include <optional>

#include "tokenizer/mojibake.h"
#include "tokenizer/unicode_text.h"

namespace mclip::clip_text {
namespace {

std::optional<std::string_view> find_entity(std::span<const HtmlEntity> table, std::string_view name) {
    const auto it = std::lower_bound(table.begin(), table.end(), name,
                                     [](const HtmlEntity& entity, std::string_view key) { return entity.name < key; });
    if (it == table.end() || it->name != name) return std::nullopt;
    return std::string_view(it->value);
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex_digit(char32_t c) { return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
bool is_ascii_alphanumeric(char32_t c) { return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

// What Python's html module substitutes for numeric reference `number` (HTML5 tokenizer rules):
// for 0x80-0x9F the Windows-1252 character (the five numbers Windows-1252 leaves undefined stay
// C1 controls, as in ftfy's fix_c1_controls), U+FFFD for 0, surrogates and out-of-range numbers,
// nothing for other control characters and noncharacters, else the character itself.
std::u32string numeric_reference(uint64_t number) {
    if (number == 0) return std::u32string(1, kReplacementCharacter);
    if (number >= 0x80 && number <= 0x9F) return fix_c1_controls(std::u32string(1, static_cast<char32_t>(number)));
    if ((number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF) return std::u32string(1, kReplacementCharacter);
    const bool is_invalid = (number >= 0x01 && number <= 0x08) || number == 0x0B || (number >= 0x0E && number <= 0x1F) ||
                            number == 0x7F || (number >= 0xFDD0 && number <= 0xFDEF) || (number & 0xFFFE) == 0xFFFE;
    if (is_invalid) return {};
    return std::u32string(1, static_cast<char32_t>(number));
}

// Parses digits in `base`, saturating just above U+10FFFF (anything larger is replaced the same way).
uint64_t parse_reference_number(std::u32string_view digits, int base) {
    uint64_t value = 0;
    for (char32_t c : digits) {
        const uint64_t digit = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        value = std::min<uint64_t>(value * base + digit, 0x110000);
    }
    return value;
}

struct Reference {
    size_t length;  // characters after the '&'
    std::u32string replacement;
};

// Python's _charref pattern at text[start] (the character after '&'):
// #[0-9]+;? | #[xX][0-9a-fA-F]+;? | [^\t\n\f <&#;]{1,32};?
std::optional<Reference> match_python_reference(std::u32string_view text, size_t start) {
    size_t i = start;
    if (i < text.size() && text[i] == '#') {
        ++i;
        int base = 10;
        if (i < text.size() && (text[i] == 'x' || text[i] == 'X')) {
            base = 16;
            ++i;
        }
        const size_t digits_start = i;
        while (i < text.size() && (base == 16 ? is_ascii_hex_digit(text[i]) : is_ascii_digit(text[i]))) ++i;
        if (i == digits_start) return std::nullopt;
        const uint64_t number = parse_reference_number(text.substr(digits_start, i - digits_start), base);
        if (i < text.size() && text[i] == ';') ++i;
        return Reference{i - start, numeric_reference(number)};
    }
    auto is_name_character = [](char32_t c) {
        return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
    };
    while (i < text.size() && i - start < 32 && is_name_character(text[i])) ++i;
    if (i == start) return std::nullopt;
    if (i < text.size() && text[i] == ';') ++i;
    const std::u32string_view name = text.substr(start, i - start);
    const std::string utf8_name = encode_utf8(name);
    if (auto value = find_entity(kHtml5Entities, utf8_name)) {
        return Reference{name.size(), decode_utf8_lossy(*value)};
    }
    // The longest prefix of at least two characters that is an entity (only the legacy names
    // without ';' can be), followed by the rest of the name unchanged.
    for (size_t prefix = name.size() - 1; prefix >= 2; --prefix) {
        if (auto value = find_entity(kHtml5Entities, encode_utf8(name.substr(0, prefix)))) {
            std::u32string replacement = decode_utf8_lossy(*value);
            replacement += name.substr(prefix);
            return Reference{name.size(), std::move(replacement)};
        }
    }
    return std::nullopt;
}

}  // namespace

std::u32string html_unescape(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const size_t ampersand = text.find(U'&', i);
        if (ampersand == std::u32string_view::npos) {
            out.append(text.substr(i));
            break;
        }
        out.append(text.substr(i, ampersand - i));
        auto reference = match_python_reference(text, ampersand + 1);
        if (reference) {
            out += reference->replacement;
            i = ampersand + 1 + reference->length;
        } else {
            out.push_back(U'&');
            i = ampersand + 1;
        }
    }
    return out;
}

std::u32string ftfy_unescape_html(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const size_t ampersand = text.find(U'&', i);
        if (ampersand == std::u32string_view::npos) {
            out.append(text.substr(i));
            break;
        }
        out.append(text.substr(i, ampersand - i));
        // ftfy's HTML_ENTITY_RE: &#?[0-9A-Za-z]{1,24};
        size_t end = ampersand + 1;
        const bool numeric = end < text.size() && text[end] == '#';
        if (numeric) ++end;
        const size_t name_start = end;
        while (end < text.size() && is_ascii_alphanumeric(text[end])) ++end;
        const size_t name_length = end - name_start;
        if (name_length == 0 || name_length > 24 || end >= text.size() || text[end] != ';') {
            out.push_back(U'&');
            i = ampersand + 1;
            continue;
        }
        ++end;
        const std::u32string_view entity = text.substr(ampersand, end - ampersand);
        std::u32string replacement(entity);
        if (!numeric) {
            const std::string name = encode_utf8(entity.substr(1));
            auto value = find_entity(kHtml5Entities, name);
            if (!value) value = find_entity(kUppercaseHtmlEntities, name);
            if (value) replacement = decode_utf8_lossy(*value);
        } else {
            // A numeric reference counts only when Python decodes all of it, ';' included.
            std::u32string decoded = html_unescape(entity);
            if (decoded.find(U';') == std::u32string::npos) replacement = std::move(decoded);
        }
        out += replacement;
        i = end;
    }
    return out;
}

}  // namespace mclip::clip_text
