#include "tokenizer/text_cleanup.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/html_unescape.h"
#include "tokenizer/mojibake.h"
#include "tokenizer/unicode_text.h"

namespace mclip::clip_text {
namespace {

// ftfy's max_decode_length: a line longer than this is fixed in pieces of this many characters.
constexpr size_t kMaxSegmentLength = 1000000;

std::u32string replace_characters(std::u32string_view text, const std::unordered_map<char32_t, std::u32string_view>& map) {
    std::u32string out;
    out.reserve(text.size());
    for (char32_t c : text) {
        const auto it = map.find(c);
        if (it == map.end()) out.push_back(c);
        else out += it->second;
    }
    return out;
}

// Latin typographic ligatures and the digraphs that exist only for legacy encodings; ligatures
// such as æ that are used on purpose are kept (ftfy.chardata.LIGATURES).
std::u32string fix_latin_ligatures(std::u32string_view text) {
    static const std::unordered_map<char32_t, std::u32string_view> ligatures = {
        {0x0132, U"IJ"}, {0x0133, U"ij"}, {0x0149, U"\u02BCn"}, {0x01F1, U"DZ"}, {0x01F2, U"Dz"}, {0x01F3, U"dz"},
        {0x01C4, U"D\u017D"}, {0x01C5, U"D\u017E"}, {0x01C6, U"d\u017E"}, {0x01C7, U"LJ"}, {0x01C8, U"Lj"},
        {0x01C9, U"lj"}, {0x01CA, U"NJ"}, {0x01CB, U"Nj"}, {0x01CC, U"nj"}, {0xFB00, U"ff"}, {0xFB01, U"fi"},
        {0xFB02, U"fl"}, {0xFB03, U"ffi"}, {0xFB04, U"ffl"}, {0xFB05, U"\u017Ft"}, {0xFB06, U"st"},
    };
    return replace_characters(text, ligatures);
}

// Full-width ASCII and half-width katakana/Hangul (U+FF01-U+FFEF) become their NFKC forms, and
// the ideographic space U+3000 a plain space (ftfy.chardata.WIDTH_MAP).
std::u32string fix_character_width(std::u32string_view text) {
    static const std::unordered_map<char32_t, std::u32string> width_map = [] {
        std::unordered_map<char32_t, std::u32string> map{{0x3000, U" "}};
        for (char32_t c = 0xFF01; c < 0xFFF0; ++c) {
            const std::u32string single(1, c);
            std::u32string normalized = normalize_nfkc(single);
            if (normalized != single) map.emplace(c, std::move(normalized));
        }
        return map;
    }();
    std::u32string out;
    out.reserve(text.size());
    for (char32_t c : text) {
        const auto it = c >= 0x3000 ? width_map.find(c) : width_map.end();
        if (it == width_map.end()) out.push_back(c);
        else out += it->second;
    }
    return out;
}

std::u32string uncurl_quotes(std::u32string_view text) {
    std::u32string out(text);
    for (char32_t& c : out) {
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
        else if (c >= 0x201C && c <= 0x201F) c = U'"';
    }
    return out;
}

// CRLF, CR, LINE SEPARATOR, PARAGRAPH SEPARATOR and NEXT LINE all become "\n".
std::u32string fix_line_breaks(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const char32_t c = text[i];
        if (c == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') continue;
        const bool is_break = c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x0085;
        out.push_back(is_break ? U'\n' : c);
    }
    return out;
}

// ANSI terminal escapes: ESC '[' (digits or ';')* letter. The digits are any Unicode decimal
// digit, as `\d` is in Python's `re`.
std::u32string remove_terminal_escapes(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
            size_t end = i + 2;
            while (end < text.size() && (text[end] == U';' || is_decimal_digit(text[end]))) ++end;
            if (end < text.size() && ((text[end] | 0x20) >= U'a' && (text[end] | 0x20) <= U'z')) {
                i = end;
                continue;
            }
        }
        out.push_back(text[i]);
    }
    return out;
}

// Control characters with no visible effect: C0 controls other than tab, line feed, form feed and
// carriage return; DEL; deprecated Arabic format controls; the byte-order mark; interlinear
// annotation characters and the object replacement character. C1 controls stay (they are
// mojibake clues), as do joiners, direction marks and tag characters.
std::u32string remove_control_characters(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (char32_t c : text) {
        const bool remove = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                            (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
        if (!remove) out.push_back(c);
    }
    return out;
}

// ftfy's fix_and_explain for one segment. Its fix_surrogates step has nothing to do here: text
// decoded from UTF-8, HTML references and the UTF-8 variants never holds surrogate code points.
std::u32string fix_segment(std::u32string_view segment, bool unescape_html) {
    // ftfy repeats the whole sequence until nothing changes; each pass only removes damage, so a
    // handful of passes suffices and the cap only guards against a cycle.
    constexpr int kMaxPasses = 32;
    std::u32string text(segment);
    for (int pass = 0; pass < kMaxPasses; ++pass) {
        const std::u32string before = text;
        if (unescape_html) text = ftfy_unescape_html(text);
        text = fix_encoding(text);
        text = fix_c1_controls(text);
        text = fix_latin_ligatures(text);
        text = fix_character_width(text);
        text = uncurl_quotes(text);
        text = fix_line_breaks(text);
        text = remove_terminal_escapes(text);
        text = remove_control_characters(text);
        text = normalize_nfc(text);
        if (text == before) break;
    }
    return text;
}

// Python's " ".join(text.split()): runs of whitespace become one space, none at either end.
std::u32string collapse_whitespace(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    bool pending_space = false;
    for (char32_t c : text) {
        if (is_python_space(c)) {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out.push_back(U' ');
        pending_space = false;
        out.push_back(c);
    }
    return out;
}

// Printable ASCII without '&' (plus tab and line feed) passes through ftfy and html.unescape
// unchanged, so only the whitespace and case steps apply. This is the common case for prompts.
bool is_plain_ascii(std::string_view utf8) {
    return std::all_of(utf8.begin(), utf8.end(), [](char c) {
        return (c >= 0x20 && c < 0x7F && c != '&') || c == '\t' || c == '\n';
    });
}

std::string clean_plain_ascii(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    bool pending_space = false;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\n') {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out.push_back(' ');
        pending_space = false;
        out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c);
    }
    return out;
}

}  // namespace

std::u32string ftfy_fix_text(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    // unescape_html="auto": from the first line that contains '<' on, the text is taken for HTML
    // whose entities must stay as they are.
    bool unescape_html = true;
    size_t position = 0;
    while (position < text.size()) {
        const size_t line_break = text.find(U'\n', position);
        size_t end = line_break == std::u32string_view::npos ? text.size() : line_break + 1;
        end = std::min(end, position + kMaxSegmentLength);
        const std::u32string_view segment = text.substr(position, end - position);
        if (segment.find(U'<') != std::u32string_view::npos) unescape_html = false;
        out += fix_segment(segment, unescape_html);
        position = end;
    }
    return out;
}

std::string clean_text(std::string_view utf8) {
    if (is_plain_ascii(utf8)) return clean_plain_ascii(utf8);
    std::u32string text = ftfy_fix_text(decode_utf8_lossy(utf8));
    text = html_unescape(html_unescape(text));
    text = collapse_whitespace(text);
    return encode_utf8(python_lower(text));
}

}  // namespace mclip::clip_text
