// The text cleanup of open_clip's SimpleTokenizer (clean="lower"), done before byte-pair encoding:
//   ftfy.fix_text(text) -> html.unescape(html.unescape(.)) -> strip -> " ".join(.split()) -> lower()
#pragma once

#include <string>
#include <string_view>

namespace mclip::clip_text {

// ftfy.fix_text with its default configuration (ftfy 6.3), line by line: HTML entities when the
// text has no '<', mojibake, C1 controls, Latin ligatures, full- and half-width forms, curly
// quotes, line breaks, terminal escapes, control characters, then NFC; repeated until stable.
std::u32string ftfy_fix_text(std::u32string_view text);

// The whole cleanup, UTF-8 in and out. Invalid UTF-8 is decoded the way Python's
// bytes.decode("utf-8", errors="replace") does: each ill-formed sequence becomes U+FFFD.
std::string clean_text(std::string_view utf8);

}  // namespace mclip::clip_text
