#include "tokenizer/mojibake.h"

#include <algorithm>
#include <bitset>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.h"
#include "tokenizer/single_byte_codecs.h"
#include "tokenizer/unicode_text.h"

namespace mclip::clip_text {
namespace {

// ---------------------------------------------------------------------------------------------
// The badness heuristic (ftfy/badness.py, version 6.3). ftfy sorts the ~400 characters that occur
// in UTF-8 mojibake into classes and lists the sequences of classes that are far likelier to be
// mojibake than intended text. The class memberships below are ftfy's data.

enum CharacterClass : uint32_t {
    kC1 = 1u << 0,               // C1 controls: no use outside mojibake
    kBad = 1u << 1,              // nearly always mojibake
    kLaw = 1u << 2,              // ¶ §
    kCurrency = 1u << 3,
    kStartPunctuation = 1u << 4,
    kEndPunctuation = 1u << 5,
    kNumeric = 1u << 6,
    kKaomoji = 1u << 7,          // letters used in emoticon faces, so allowed in odd places
    kUpperAccented = 1u << 8,
    kLowerAccented = 1u << 9,
    kUpperCommon = 1u << 10,
    kLowerCommon = 1u << 11,
    kBox = 1u << 12,             // box drawing
    kCommon = 1u << 13,          // frequent in any context
};

struct ClassMembers {
    CharacterClass character_class;
    std::u32string_view characters;
    std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive
};

const std::unordered_map<char32_t, uint32_t>& character_classes() {
    static const std::unordered_map<char32_t, uint32_t> classes = [] {
        const std::vector<ClassMembers> members = {
            {kCommon, U"\u00A0\u00AD\u00B7\u00B4\u2013\u2014\u2015\u2026\u2019", {}},
            {kC1, U"", {{0x80, 0x9F}}},
            {kBad,
             U"\u00A6\u00A4\u00A8\u00AC\u00AF\u00B8\u0192\u02C6\u02C7\u02D8\u02DB\u02DC\u2020\u2021\u2030\u2310\u25CA"
             U"\uFFFD\u00AA\u00BA",
             {}},
            {kLaw, U"\u00B6\u00A7", {}},
            {kCurrency, U"\u00A2\u00A3\u00A5\u20A7\u20AC", {}},
            {kStartPunctuation, U"\u00A1\u00AB\u00BF\u00A9\u0384\u0385\u2018\u201A\u201C\u201E\u2022\u2039\uF8FF", {}},
            {kEndPunctuation, U"\u00AE\u00BB\u02DD\u201D\u203A\u2122", {}},
            {kNumeric,
             U"\u00B2\u00B3\u00B9\u00B1\u00BC\u00BD\u00BE\u00D7\u00B5\u00F7\u2044\u2202\u2206\u220F\u2211\u221A\u221E"
             U"\u2229\u222B\u2248\u2260\u2261\u2264\u2265\u2116",
             {}},
            {kKaomoji, U"\u0150\u014C\u016A\u0172\u00B0", {{0xD2, 0xD6}, {0xD9, 0xDC}, {0xF2, 0xF6}, {0xF8, 0xFC}}},
            {kUpperAccented,
             U"\u00D8\u00DC\u00DD\u0102\u0100\u0104\u0106\u010C\u010E\u0110\u0118\u011A\u0112\u0116\u011E\u0122\u0130"
             U"\u012A\u0136\u0139\u013D\u0141\u013B\u0143\u0147\u0145\u0152\u0158\u015A\u015E\u0160\u0162\u0164\u016E"
             U"\u0170\u0178\u0179\u017B\u017D\u0490",
             {{0xC0, 0xD1}}},
            {kLowerAccented,
             U"\u00DF\u0103\u0105\u0101\u0107\u010D\u010F\u0111\u0119\u011B\u0113\u0117\u011F\u0123\u012F\u012B\u0137"
             U"\u013A\u013E\u0142\u013C\u0153\u0155\u015B\u015F\u0161\u0165\u00FC\u017A\u017C\u017E\u0491\uFB01\uFB02",
             {{0xE0, 0xF1}}},
            {kUpperCommon, U"\u00DE\u0386\u0388\u0389\u038A\u038C\u038E\u038F\u03AA\u03AB", {{0x391, 0x3A9}, {0x401, 0x42F}}},
            {kLowerCommon, U"\u03AC\u03AD\u03AE\u03AF\u03B0", {{0x3B1, 0x3C9}, {0x430, 0x45F}}},
            {kBox, U"\u2502\u250C\u2510\u2518\u251C\u2524\u252C\u253C\u2580\u2584\u2588\u258C\u2590\u2591\u2592\u2593",
             {{0x2550, 0x256C}}},
        };
        std::unordered_map<char32_t, uint32_t> table;
        for (const auto& member : members) {
            for (char32_t c : member.characters) table[c] |= member.character_class;
            for (const auto& [first, last] : member.ranges) {
                for (char32_t c = first; c <= last; ++c) table[c] |= member.character_class;
            }
        }
        return table;
    }();
    return classes;
}

uint32_t classes_of(char32_t c) {
    if (c < 0x80) return 0;
    const auto& table = character_classes();
    const auto it = table.find(c);
    return it == table.end() ? 0 : it->second;
}

bool is_ascii_lower(char32_t c) { return c >= 'a' && c <= 'z'; }
bool is_ascii_letter(char32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool is_not_ascii_letter(char32_t c) { return !is_ascii_letter(c); }
bool is_not_newline(char32_t c) { return c != '\n'; }

// One position of a badness sequence: a character of any of `classes`, one of `characters`, or
// one that `predicate` accepts. An optional position may also match nothing (`\s?`).
struct CharacterSet {
    uint32_t classes = 0;
    std::u32string_view characters = {};
    bool (*predicate)(char32_t) = nullptr;
    bool optional = false;

    bool accepts(char32_t c) const {
        return (classes & classes_of(c)) != 0 || characters.find(c) != std::u32string_view::npos ||
               (predicate != nullptr && predicate(c));
    }
};

struct BadnessSequence {
    bool at_start;  // only at the beginning of the text (`^`)
    std::vector<CharacterSet> positions;
};

CharacterSet any_of(std::u32string_view characters, uint32_t classes = 0) { return {classes, characters}; }
CharacterSet in_classes(uint32_t classes) { return {classes}; }
CharacterSet where(bool (*predicate)(char32_t), std::u32string_view characters = {}, uint32_t classes = 0) {
    return {classes, characters, predicate};
}

// ftfy's BADNESS_RE, one alternative per entry, in its order.
const std::vector<BadnessSequence>& badness_sequences() {
    constexpr uint32_t kAccented = kLowerAccented | kUpperAccented;
    constexpr uint32_t kMarked = kAccented | kBox | kStartPunctuation | kEndPunctuation | kCurrency | kNumeric | kLaw;
    static const std::vector<BadnessSequence> sequences = {
        {false, {in_classes(kC1)}},
        {false, {in_classes(kBad | kMarked), in_classes(kBad)}},
        {false, {where(is_ascii_letter), in_classes(kLowerCommon | kUpperCommon), in_classes(kBad)}},
        {false, {in_classes(kBad), in_classes(kMarked)}},
        {false, {in_classes(kLowerAccented | kLowerCommon | kBox | kEndPunctuation | kCurrency | kNumeric),
                 in_classes(kUpperAccented)}},
        {false, {in_classes(kBox | kEndPunctuation | kCurrency | kNumeric), in_classes(kLowerAccented)}},
        {false, {in_classes(kLowerAccented | kBox | kEndPunctuation), in_classes(kCurrency)}},
        {false, {where(is_python_space), in_classes(kUpperAccented), in_classes(kCurrency)}},
        {false, {in_classes(kUpperAccented | kBox), in_classes(kNumeric | kLaw)}},
        {false, {in_classes(kAccented | kBox | kCurrency | kEndPunctuation), in_classes(kStartPunctuation),
                 in_classes(kNumeric)}},
        {false, {in_classes(kAccented | kCurrency | kNumeric | kBox | kLaw), in_classes(kEndPunctuation),
                 in_classes(kStartPunctuation)}},
        {false, {in_classes(kCurrency | kNumeric | kBox), in_classes(kStartPunctuation)}},
        {false, {where(is_ascii_lower), in_classes(kUpperAccented), in_classes(kStartPunctuation | kCurrency)}},
        {false, {in_classes(kBox), in_classes(kKaomoji)}},
        {false, {in_classes(kAccented | kCurrency | kNumeric | kStartPunctuation | kEndPunctuation | kLaw),
                 in_classes(kBox)}},
        {false, {in_classes(kBox), in_classes(kEndPunctuation)}},
        {false, {in_classes(kAccented), in_classes(kStartPunctuation | kEndPunctuation), where(is_word_character)}},
        // The ligature œ when not followed by an unaccented Latin letter.
        {false, {any_of(U"\u0152\u0153"), where(is_not_ascii_letter)}},
        // Degree signs after capital letters.
        {false, {in_classes(kUpperAccented), any_of(U"\u00B0")}},
        // Common Windows-1252 two-character mojibake.
        {false, {any_of(U"\u00C2\u00C3\u00CE\u00D0"),
                 any_of(U"\u20AC\u0153\u0160\u0161\u00A2\u00A3\u0178\u017E\u00A0\u00AD\u00AE\u00A9\u00B0\u00B7\u00BB"
                        U"\u2013\u2014\u00B4",
                        kStartPunctuation | kEndPunctuation)}},
        {false, {any_of(U"\u00D7"), any_of(U"\u00B2\u00B3")}},
        // Windows-1252 mojibake of Arabic words: four characters, as the second of each pair is common.
        {false, {any_of(U"\u00D8\u00D9"),
                 any_of(U"\u0178\u0160\u00AE\u00B0\u00B5\u00BB", kCommon | kCurrency | kBad | kNumeric | kStartPunctuation),
                 any_of(U"\u00D8\u00D9"),
                 any_of(U"\u0178\u0160\u00AE\u00B0\u00B5\u00BB", kCommon | kCurrency | kBad | kNumeric | kStartPunctuation)}},
        // Windows-1252 mojibake starting three-byte sequences of South Asian alphabets.
        {false, {any_of(U"\u00E0"), any_of(U"\u00B2\u00B5\u00B9\u00BC\u00BD\u00BE")}},
        // MacRoman mojibake.
        {false, {any_of(U"\u221A"), any_of(U"\u00B1\u2202\u2020\u2260\u00AE\u2122\u00B4\u2264\u2265\u00A5\u00B5\u00F8")}},
        {false, {any_of(U"\u2248"), any_of(U"\u00B0\u00A2")}},
        {false, {any_of(U"\u201A"), any_of(U"\u00C4"),
                 any_of(U"\u00EC\u00EE\u00EF\u00F2\u00F4\u00FA\u00F9\u00FB\u2020\u00B0\u00A2\u03C0")}},
        {false, {any_of(U"\u201A"), any_of(U"\u00E2\u00F3"), any_of(U"\u00E0\u00E4\u00B0\u00EA")}},
        // Windows-1251 mojibake of characters in the U+2000 range.
        {false, {any_of(U"\u0432"), any_of(U"\u0402")}},
        // Windows-1251 mojibake of Latin-1 characters or Cyrillic: three characters, as pairs are common.
        {false, {any_of(U"\u0412\u0413\u0420\u0421"),
                 any_of(U"\u00B0\u00B5", kC1 | kBad | kStartPunctuation | kEndPunctuation | kCurrency),
                 any_of(U"\u0412\u0413\u0420\u0421")}},
        // Windows-1251 over Latin-1 over Windows-1252, next to a Latin letter.
        {false, {any_of(U"\u0413"), any_of(U"\u045E"), any_of(U"\u0412"), any_of(U"\u0402"), any_of(U"\u0412"),
                 where(is_not_newline), where(is_ascii_letter, U" ")}},
        // Windows-1252 encodings of 'à' and 'á', and of U+00A0 itself.
        {false, {any_of(U"\u00C3"), any_of(U"\u00A0\u00A1")}},
        {false, {where(is_ascii_lower), CharacterSet{0, {}, is_python_space, true}, any_of(U"\u00C3\u00C2"), any_of(U" ")}},
        {true, {any_of(U"\u00C3\u00C2"), any_of(U" ")}},
        // Â before a common character that it encodes as itself.
        {false, {where(is_ascii_lower, U".,?!", kEndPunctuation), any_of(U"\u00C2"),
                 any_of(U" ", kStartPunctuation | kEndPunctuation)}},
        // Windows-1253 mojibake of characters in the U+2000 range.
        {false, {any_of(U"\u03B2"), any_of(U"\u20AC"), any_of(U"\u2122\u00A0\u0386\u00AD\u00AE\u00B0")}},
        // Windows-1253 mojibake of Latin-1 characters or Greek.
        {false, {any_of(U"\u0392\u0393\u039E\u039F"),
                 any_of(U"\u00B0", kC1 | kBad | kStartPunctuation | kEndPunctuation | kCurrency),
                 any_of(U"\u0392\u0393\u039E\u039F")}},
        // Windows-1257 mojibake of characters in the U+2000 range.
        {false, {any_of(U"\u0101"), any_of(U"\u20AC")}},
    };
    return sequences;
}

bool sequence_matches(const std::vector<CharacterSet>& positions, size_t index, std::u32string_view text, size_t at) {
    if (index == positions.size()) return true;
    const auto& position = positions[index];
    if (at < text.size() && position.accepts(text[at]) && sequence_matches(positions, index + 1, text, at + 1)) {
        return true;
    }
    return position.optional && sequence_matches(positions, index + 1, text, at);
}

// ---------------------------------------------------------------------------------------------
// The single-byte codecs.

class Codec {
public:
    explicit Codec(const SingleByteCodec& codec) : codec_(codec) {
        for (int i = 0; i < 128; ++i) encoding_[codec.high_chars[i]] = static_cast<unsigned char>(0x80 + i);
    }
    const char* name() const { return codec_.name; }
    bool sloppy() const { return codec_.sloppy; }
    char32_t decode(unsigned char byte) const {
        if (byte == 0x1A && codec_.sloppy) return kReplacementCharacter;
        return byte < 0x80 ? byte : codec_.high_chars[byte - 0x80];
    }
    std::optional<unsigned char> encode(char32_t c) const {
        if (codec_.sloppy) {
            if (c == kReplacementCharacter) return 0x1A;
            if (c == 0x1A) return std::nullopt;
        }
        if (c < 0x80) return static_cast<unsigned char>(c);
        const auto it = encoding_.find(c);
        if (it == encoding_.end()) return std::nullopt;
        return it->second;
    }
    // ftfy's possible_encoding: could the text have been decoded from this encoding?
    bool can_encode(std::u32string_view text) const {
        return std::all_of(text.begin(), text.end(), [this](char32_t c) { return encode(c).has_value(); });
    }
    std::string encode_all(std::u32string_view text) const {
        std::string bytes;
        bytes.reserve(text.size());
        for (char32_t c : text) bytes.push_back(static_cast<char>(*encode(c)));
        return bytes;
    }

private:
    const SingleByteCodec& codec_;
    std::unordered_map<char32_t, unsigned char> encoding_;
};

const std::vector<Codec>& codecs() {
    static const std::vector<Codec> all = [] {
        std::vector<Codec> list;
        for (const auto& codec : kMojibakeCodecs) list.emplace_back(codec);
        return list;
    }();
    return all;
}

const Codec& codec_named(std::string_view name) {
    for (const auto& codec : codecs()) {
        if (name == codec.name()) return codec;
    }
    throw Error(ErrorCode::internal, "no single-byte codec named " + std::string(name));
}

// ---------------------------------------------------------------------------------------------
// Byte-level patterns (ftfy.chardata.ALTERED_UTF8_RE and LOSSY_UTF8_RE). Each alternative is a
// sequence of byte sets; like Python's `re`, the first alternative that matches at a position wins.

using ByteSet = std::bitset<256>;
using BytePattern = std::vector<ByteSet>;

ByteSet byte_set(std::initializer_list<std::pair<int, int>> ranges) {
    ByteSet set;
    for (const auto& [first, last] : ranges) {
        for (int b = first; b <= last; ++b) set.set(static_cast<size_t>(b));
    }
    return set;
}
ByteSet byte_set(int byte) { return byte_set({{byte, byte}}); }

size_t match_alternatives(const std::vector<BytePattern>& alternatives, std::string_view bytes, size_t at) {
    for (const auto& pattern : alternatives) {
        if (at + pattern.size() > bytes.size()) continue;
        bool matched = true;
        for (size_t k = 0; k < pattern.size() && matched; ++k) {
            matched = pattern[k].test(static_cast<unsigned char>(bytes[at + k]));
        }
        if (matched) return pattern.size();
    }
    return 0;
}

// UTF-8 sequences that would be valid if a Windows program had not turned byte 0xA0 into a space.
const std::vector<BytePattern>& altered_utf8_patterns() {
    static const std::vector<BytePattern> patterns = [] {
        const ByteSet space = byte_set(' ');
        const ByteSet continuation = byte_set({{0x80, 0xBF}});
        const ByteSet likely_continuation = byte_set({{0x80, 0x84}, {0x86, 0x9F}, {0xA1, 0xBF}});
        return std::vector<BytePattern>{
            {byte_set({{0xC2, 0xC3}, {0xC5, 0xC5}, {0xCE, 0xCE}, {0xD0, 0xD0}, {0xD9, 0xD9}}), space},
            {byte_set({{0xE2, 0xE3}}), space, likely_continuation},
            {byte_set({{0xE0, 0xE3}}), likely_continuation, space},
            {byte_set(0xF0), space, continuation, continuation},
            {byte_set(0xF0), continuation, space, continuation},
            {byte_set(0xF0), continuation, continuation, space},
        };
    }();
    return patterns;
}

// UTF-8 or CESU-8 sequences with lost continuation bytes: 0x1A stands for a byte that became
// U+FFFD, and '?' may replace one byte per sequence.
const std::vector<BytePattern>& lossy_utf8_patterns() {
    static const std::vector<BytePattern> patterns = [] {
        const ByteSet lost = byte_set(0x1A);
        const ByteSet lost_or_question = byte_set({{0x1A, 0x1A}, {'?', '?'}});
        const ByteSet continuation_or_lost = byte_set({{0x80, 0xBF}, {0x1A, 0x1A}});
        const ByteSet any_continuation = byte_set({{0x80, 0xBF}, {0x1A, 0x1A}, {'?', '?'}});
        const ByteSet ed = byte_set(0xED);
        const ByteSet three_byte_lead = byte_set({{0xE0, 0xEF}});
        const ByteSet four_byte_lead = byte_set({{0xF0, 0xF4}});
        return std::vector<BytePattern>{
            {byte_set({{0xC2, 0xDF}}), lost},
            {byte_set({{0xC2, 0xC3}}), byte_set('?')},
            {ed, byte_set({{0xA0, 0xAF}}), lost_or_question, ed, byte_set({{0xB0, 0xBF}}), any_continuation},
            {ed, byte_set({{0xA0, 0xAF}}), any_continuation, ed, byte_set({{0xB0, 0xBF}}), lost_or_question},
            {three_byte_lead, lost_or_question, continuation_or_lost},
            {three_byte_lead, continuation_or_lost, lost_or_question},
            {four_byte_lead, lost_or_question, continuation_or_lost, continuation_or_lost},
            {four_byte_lead, continuation_or_lost, lost_or_question, continuation_or_lost},
            {four_byte_lead, continuation_or_lost, continuation_or_lost, lost_or_question},
            {lost},
        };
    }();
    return patterns;
}

bool contains_altered_utf8(std::string_view bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (match_alternatives(altered_utf8_patterns(), bytes, i) != 0) return true;
    }
    return false;
}

// ftfy's restore_byte_a0. A lone "Ã " is usually the French word "à" whose following space was
// merged with the 0xA0 byte, so it gets its 0xA0 back and keeps the space; the exceptions are
// the Portuguese "às", "àquele", "àquela" and "àquilo".
std::string restore_byte_a0(std::string_view bytes) {
    static constexpr std::string_view kExceptions[] = {" ", "quele", "quela", "quilo", "s "};
    std::string with_a_grave;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (static_cast<unsigned char>(bytes[i]) == 0xC3 && i + 1 < bytes.size() && bytes[i + 1] == ' ') {
            const std::string_view rest = bytes.substr(i + 2);
            const bool excepted = std::any_of(std::begin(kExceptions), std::end(kExceptions),
                                              [&](std::string_view word) { return rest.substr(0, word.size()) == word; });
            if (!excepted) {
                with_a_grave += "\xC3\xA0 ";
                ++i;
                continue;
            }
        }
        with_a_grave.push_back(bytes[i]);
    }
    std::string restored;
    for (size_t i = 0; i < with_a_grave.size();) {
        const size_t length = match_alternatives(altered_utf8_patterns(), with_a_grave, i);
        if (length == 0) {
            restored.push_back(with_a_grave[i++]);
            continue;
        }
        for (size_t k = 0; k < length; ++k, ++i) restored.push_back(with_a_grave[i] == ' ' ? '\xA0' : with_a_grave[i]);
    }
    return restored;
}

// ftfy's replace_lossy_sequences: each lossy sequence becomes the UTF-8 of U+FFFD.
std::string replace_lossy_sequences(std::string_view bytes) {
    std::string replaced;
    for (size_t i = 0; i < bytes.size();) {
        const size_t length = match_alternatives(lossy_utf8_patterns(), bytes, i);
        if (length == 0) {
            replaced.push_back(bytes[i++]);
        } else {
            replaced += "\xEF\xBF\xBD";
            i += length;
        }
    }
    return replaced;
}

// ftfy's "utf-8-variants" codec: strict UTF-8, plus CESU-8 (a surrogate pair encoded as two
// three-byte sequences, ED A0-AF xx ED B0-BF xx) and Java's C0 80 for U+0000.
std::optional<std::u32string> decode_utf8_variants(std::string_view bytes) {
    auto byte_at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
    auto in_range = [&](size_t i, unsigned char low, unsigned char high) { return byte_at(i) >= low && byte_at(i) <= high; };
    std::u32string text;
    size_t start = 0;
    auto flush_standard = [&](size_t end) {
        auto decoded = decode_utf8_strict(bytes.substr(start, end - start));
        if (decoded) text += *decoded;
        return decoded.has_value();
    };
    for (size_t i = 0; i < bytes.size();) {
        if (byte_at(i) == 0xC0 && i + 1 < bytes.size() && byte_at(i + 1) == 0x80) {
            if (!flush_standard(i)) return std::nullopt;
            text.push_back(0);
            i += 2;
            start = i;
        } else if (byte_at(i) == 0xED && i + 5 < bytes.size() && in_range(i + 1, 0xA0, 0xAF) && in_range(i + 2, 0x80, 0xBF) &&
                   byte_at(i + 3) == 0xED && in_range(i + 4, 0xB0, 0xBF) && in_range(i + 5, 0x80, 0xBF)) {
            if (!flush_standard(i)) return std::nullopt;
            // 11101101 1010abcd 10efghij 11101101 1011klmn 10opqrst -> 0x10000 + abcdefghijklmnopqrst
            const char32_t code_point = 0x10000 + ((byte_at(i + 1) & 0x0F) << 16) + ((byte_at(i + 2) & 0x3F) << 10) +
                                        ((byte_at(i + 4) & 0x0F) << 6) + (byte_at(i + 5) & 0x3F);
            text.push_back(code_point);
            i += 6;
            start = i;
        } else {
            ++i;
        }
    }
    if (!flush_standard(bytes.size())) return std::nullopt;
    return text;
}

// ---------------------------------------------------------------------------------------------
// Mojibake embedded in otherwise intact text (ftfy.chardata.UTF8_DETECTOR_RE). The "clues" are the
// characters that the bytes of a UTF-8 sequence decode to in the Latin-alphabet, Cyrillic and
// Greek encodings ftfy repairs.

struct Utf8Clues {
    std::unordered_map<char32_t, uint8_t> roles;  // bitmask of the roles below
};

enum ClueRole : uint8_t {
    kFirstOfTwo = 1,            // decodes from 0xC2-0xDF
    kFirstOfThree = 2,          // 0xE0-0xEF
    kFirstOfFour = 4,           // 0xF0 or 0xF3 (the other lead bytes start unassigned code points)
    kContinuation = 8,          // 0x80-0xBF, or a space standing for 0xA0
    kStrictContinuation = 16,   // the same without spaces, dashes, quotes, bullets and ellipses
};

const Utf8Clues& utf8_clues() {
    static const Utf8Clues clues = [] {
        Utf8Clues result;
        auto add = [&](char32_t c, uint8_t role) { result.roles[c] |= role; };
        for (const char* name : {"latin-1", "sloppy-windows-1252", "sloppy-windows-1250", "sloppy-windows-1251",
                                 "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257"}) {
            const Codec& codec = codec_named(name);
            for (int byte = 0x80; byte <= 0xFF; ++byte) {
                const char32_t c = codec.decode(static_cast<unsigned char>(byte));
                if (byte <= 0xBF) add(c, kContinuation | kStrictContinuation);
                if (byte >= 0xC2 && byte <= 0xDF) add(c, kFirstOfTwo);
                if (byte >= 0xE0 && byte <= 0xEF) add(c, kFirstOfThree);
                if (byte == 0xF0 || byte == 0xF3) add(c, kFirstOfFour);
            }
        }
        add(U' ', kContinuation);
        for (char32_t c : std::u32string_view(U"\u2013\u2014\u2015\u2018\u2019\u201A\u201C\u201D\u201E\u2022\u2026")) {
            result.roles[c] &= static_cast<uint8_t>(~kStrictContinuation);
        }
        return result;
    }();
    return clues;
}

bool has_role(char32_t c, uint8_t role) {
    const auto& roles = utf8_clues().roles;
    const auto it = roles.find(c);
    return it != roles.end() && (it->second & role) != 0;
}

// Length of the UTF8_DETECTOR_RE match at text[at], or 0:
// (?<![strict continuation]) ( [first of 2][cont] | [first of 3][cont]{2} | [first of 4][cont]{3} )+
size_t match_utf8_detector(std::u32string_view text, size_t at) {
    if (at > 0 && has_role(text[at - 1], kStrictContinuation)) return 0;
    auto continuations = [&](size_t from, size_t count) {
        if (from + count > text.size()) return false;
        for (size_t k = 0; k < count; ++k) {
            if (!has_role(text[from + k], kContinuation)) return false;
        }
        return true;
    };
    size_t end = at;
    while (end < text.size()) {
        const char32_t lead = text[end];
        if (has_role(lead, kFirstOfTwo) && continuations(end + 1, 1)) {
            end += 2;
        } else if (has_role(lead, kFirstOfThree) && continuations(end + 1, 2)) {
            end += 3;
        } else if (has_role(lead, kFirstOfFour) && continuations(end + 1, 3)) {
            end += 4;
        } else {
            break;
        }
    }
    return end - at;
}

bool contains_utf8_clue(std::u32string_view text) {
    for (size_t i = 0; i < text.size(); ++i) {
        if (match_utf8_detector(text, i) != 0) return true;
    }
    return false;
}

// ftfy's decode_inconsistent_utf8: each run of UTF-8-looking mojibake that is itself "bad" (and
// shorter than the whole text, so this cannot recurse forever) gets fixed on its own.
std::u32string decode_inconsistent_utf8(std::u32string_view text) {
    std::u32string out;
    for (size_t i = 0; i < text.size();) {
        const size_t length = match_utf8_detector(text, i);
        if (length == 0) {
            out.push_back(text[i++]);
            continue;
        }
        const std::u32string_view run = text.substr(i, length);
        out += length < text.size() && is_mojibake(run) ? fix_encoding(run) : std::u32string(run);
        i += length;
    }
    return out;
}

bool is_c1_control(char32_t c) { return c >= 0x80 && c <= 0x9F; }

// One step of ftfy's fix_encoding_and_explain.
std::u32string fix_encoding_step(std::u32string_view text) {
    const bool is_ascii = std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
    if (text.empty() || is_ascii || !is_mojibake(text)) return std::u32string(text);

    // Text that was UTF-8 decoded with a single-byte encoding: encode it back and decode as UTF-8.
    bool latin_1_possible = false;
    for (const auto& codec : codecs()) {
        if (!codec.can_encode(text)) continue;
        if (std::string_view(codec.name()) == "latin-1") latin_1_possible = true;
        std::string bytes = codec.encode_all(text);
        // MacRoman is excluded here: an en dash followed by a space would look like a lost 0xA0.
        if (std::string_view(codec.name()) != "macroman" && contains_altered_utf8(bytes)) bytes = restore_byte_a0(bytes);
        if (codec.sloppy()) bytes = replace_lossy_sequences(bytes);
        if (auto decoded = decode_utf8_variants(bytes)) return std::move(*decoded);
    }

    if (contains_utf8_clue(text)) {
        std::u32string fixed = decode_inconsistent_utf8(text);
        if (fixed != text) return fixed;
    }

    // Latin-1 text with C1 controls was probably meant as Windows-1252 (ftfy only checks that the
    // text is possible in "windows-1252", a name its list of possible encodings never holds, so
    // it always tries this). Windows-1252 leaves five bytes undefined; then this does not apply.
    if (latin_1_possible) {
        const bool decodable = std::none_of(text.begin(), text.end(), [](char32_t c) {
            return c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D;
        });
        if (decodable) {
            std::u32string fixed = fix_c1_controls(text);
            if (fixed != text) return fixed;
        }
    }

    if (std::any_of(text.begin(), text.end(), is_c1_control)) return fix_c1_controls(text);
    return std::u32string(text);
}

}  // namespace

bool is_mojibake(std::u32string_view text) {
    const auto& sequences = badness_sequences();
    for (size_t at = 0; at < text.size(); ++at) {
        for (const auto& sequence : sequences) {
            if (sequence.at_start && at != 0) continue;
            if (sequence_matches(sequence.positions, 0, text, at)) return true;
        }
    }
    return false;
}

std::u32string fix_encoding(std::u32string_view text) {
    // Each step either returns its input or changes it; ftfy loops until nothing changes. The cap
    // only guards against a cycle, which ftfy's heuristics are designed never to produce.
    constexpr int kMaxSteps = 64;
    std::u32string current(text);
    for (int step = 0; step < kMaxSteps; ++step) {
        std::u32string next = fix_encoding_step(current);
        if (next == current) break;
        current = std::move(next);
    }
    return current;
}

std::u32string fix_c1_controls(std::u32string_view text) {
    const Codec& windows_1252 = codec_named("sloppy-windows-1252");
    std::u32string fixed(text);
    for (char32_t& c : fixed) {
        if (is_c1_control(c)) c = windows_1252.decode(static_cast<unsigned char>(c));
    }
    return fixed;
}

}  // namespace mclip::clip_text
