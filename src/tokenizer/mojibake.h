// Mojibake detection and repair as ftfy 6.3 does it (ftfy.badness.is_bad, ftfy.fix_encoding):
// text that was encoded as UTF-8 and decoded with a single-byte encoding ("cafÃ©") is encoded
// back with that encoding and decoded as UTF-8 ("café"), when a heuristic says it looks broken.
#pragma once

#include <string>
#include <string_view>

namespace mclip::clip_text {

// ftfy's badness heuristic: true when the text holds a character sequence that is far more
// likely to be mojibake than intended ("Ã©", a C1 control character, "â€").
bool is_mojibake(std::u32string_view text);

// ftfy.fix_encoding with the default configuration: repeats one repair step until the text stops
// changing. A step tries, in order, the ten single-byte encodings ftfy knows (with its fixes for
// a lost 0xA0 byte, lossy U+FFFD sequences and CESU-8), then fixes mojibake embedded in otherwise
// intact text, then Latin-1 text meant as Windows-1252, then stray C1 control characters.
std::u32string fix_encoding(std::u32string_view text);

// ftfy's fix_c1_controls: C1 control characters (U+0080-U+009F) become their Windows-1252 meaning.
std::u32string fix_c1_controls(std::u32string_view text);

}  // namespace mclip::clip_text
