#include "tokenizer/unicode_text.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "common/error.h"

namespace mclip::clip_text {
namespace {

struct DecodedCharacter {
    char32_t code_point;
    size_t length;  // bytes consumed: the whole sequence, or its maximal ill-formed prefix
    bool valid;
};

// One UTF-8 sequence at bytes[i]. The second byte's range depends on the lead byte (Unicode table
// 3-7), which excludes overlong forms, surrogates and code points above U+10FFFF; an ill-formed
// sequence consumes its longest prefix that could still have begun a well-formed one.
DecodedCharacter decode_character(std::string_view bytes, size_t i) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) return {lead, 1, true};
    int continuation_count = 0;
    char32_t code_point = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        continuation_count = 1;
        code_point = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        continuation_count = 2;
        code_point = lead & 0x0F;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        continuation_count = 3;
        code_point = lead & 0x07;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return {kReplacementCharacter, 1, false};
    }
    size_t length = 1;
    for (int k = 0; k < continuation_count; ++k) {
        if (i + length >= bytes.size()) return {kReplacementCharacter, length, false};
        const auto byte = static_cast<unsigned char>(bytes[i + length]);
        if (byte < low || byte > high) return {kReplacementCharacter, length, false};
        code_point = (code_point << 6) | (byte & 0x3F);
        low = 0x80;
        high = 0xBF;
        ++length;
    }
    return {code_point, length, true};
}

utf8proc_category_t category_of(char32_t c) {
    return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(c)));
}

bool is_cased(char32_t c) {
    // Unicode's Cased property is Lu + Ll + Lt + Other_Lowercase + Other_Uppercase. utf8proc has no
    // Other_* data: letters with a case mapping cover most of it (Roman numerals, circled letters),
    // the rest is either also case-ignorable (modifier letters, which the sigma rule skips anyway)
    // or one of the characters listed here: ª, º and the squared and negative enclosed capitals.
    const auto category = category_of(c);
    if (category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LL || category == UTF8PROC_CATEGORY_LT) {
        return true;
    }
    if (c == 0x00AA || c == 0x00BA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189)) {
        return true;
    }
    const auto code = static_cast<utf8proc_int32_t>(c);
    return utf8proc_tolower(code) != code || utf8proc_toupper(code) != code;
}

bool is_case_ignorable(char32_t c) {
    // Case_Ignorable = Mn | Me | Cf | Lm | Sk | Word_Break in {MidLetter, MidNumLet, Single_Quote}.
    // utf8proc has no Word_Break data; these are the 17 characters of those three classes.
    switch (category_of(c)) {
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_SK:
            return true;
        default:
            break;
    }
    switch (c) {
        case 0x0027: case 0x002E: case 0x003A: case 0x00B7: case 0x0387: case 0x055F: case 0x05F4:
        case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55:
        case 0xFF07: case 0xFF0E: case 0xFF1A:
            return true;
        default:
            return false;
    }
}

// Python lowercases U+03A3 to final sigma U+03C2 when it ends a word:
// \p{Cased} \p{Case_Ignorable}* U+03A3 !(\p{Case_Ignorable}* \p{Cased}).
char32_t lower_capital_sigma(std::u32string_view text, size_t i) {
    size_t before = i;
    while (before > 0 && is_case_ignorable(text[before - 1])) --before;
    if (before == 0 || !is_cased(text[before - 1])) return 0x03C3;
    size_t after = i + 1;
    while (after < text.size() && is_case_ignorable(text[after])) ++after;
    return after < text.size() && is_cased(text[after]) ? 0x03C3 : 0x03C2;
}

std::u32string normalize_with(std::u32string_view text, int options) {
    const std::string utf8 = encode_utf8(text);
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t length =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()), static_cast<utf8proc_ssize_t>(utf8.size()),
                     &mapped, static_cast<utf8proc_option_t>(options));
    if (length < 0) {
        throw Error(ErrorCode::internal, std::string("Unicode normalization failed: ") + utf8proc_errmsg(length));
    }
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
    return decode_utf8_lossy(std::string_view(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length)));
}

}  // namespace

std::u32string decode_utf8_lossy(std::string_view bytes) {
    std::u32string text;
    text.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        const auto decoded = decode_character(bytes, i);
        text.push_back(decoded.code_point);
        i += decoded.length;
    }
    return text;
}

std::optional<std::u32string> decode_utf8_strict(std::string_view bytes) {
    std::u32string text;
    text.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        const auto decoded = decode_character(bytes, i);
        if (!decoded.valid) return std::nullopt;
        text.push_back(decoded.code_point);
        i += decoded.length;
    }
    return text;
}

char32_t next_code_point(std::string_view utf8, size_t& position) {
    const auto decoded = decode_character(utf8, position);
    position += decoded.length;
    return decoded.code_point;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

std::string encode_utf8(std::u32string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char32_t c : text) append_utf8(out, c);
    return out;
}

bool is_python_space(char32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    const auto* property = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
    return property->category == UTF8PROC_CATEGORY_ZS || property->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           property->bidi_class == UTF8PROC_BIDI_CLASS_B || property->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

bool is_letter(char32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    switch (category_of(c)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            return true;
        default:
            return false;
    }
}

bool is_number(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    const auto category = category_of(c);
    return category == UTF8PROC_CATEGORY_ND || category == UTF8PROC_CATEGORY_NL || category == UTF8PROC_CATEGORY_NO;
}

bool is_decimal_digit(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return category_of(c) == UTF8PROC_CATEGORY_ND;
}

bool is_word_character(char32_t c) { return c == '_' || is_letter(c) || is_number(c); }

bool equals_ignoring_case(char32_t c, char32_t letter) {
    if (c == letter) return true;
    if (c < 0x80) return c >= 'A' && c <= 'Z' && c + ('a' - 'A') == letter;
    const auto upper = utf8proc_toupper(static_cast<utf8proc_int32_t>(c));
    return static_cast<char32_t>(utf8proc_tolower(upper)) == letter;
}

std::u32string python_lower(std::u32string_view text) {
    std::u32string lower;
    lower.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const char32_t c = text[i];
        if (c < 0x80) {
            lower.push_back(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        } else if (c == 0x0130) {
            // The one unconditional multi-character lowercase mapping (SpecialCasing.txt).
            lower.push_back(U'i');
            lower.push_back(0x0307);
        } else if (c == 0x03A3) {
            lower.push_back(lower_capital_sigma(text, i));
        } else {
            lower.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
        }
    }
    return lower;
}

std::u32string normalize_nfc(std::u32string_view text) {
    // Nothing below U+0300 decomposes or combines under NFC: the combining marks start there.
    bool may_change = false;
    for (char32_t c : text) may_change |= c >= 0x300;
    if (!may_change) return std::u32string(text);
    return normalize_with(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
}

std::u32string normalize_nfkc(std::u32string_view text) {
    return normalize_with(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
}

}  // namespace mclip::clip_text
