// A 5x7 bitmap font for the printable ASCII characters, drawn for mclip (one glyph per
// character, '#' marks an inked pixel). Characters outside ASCII are drawn as '?'.
#pragma once

namespace mclip {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;

// True when pixel (x, y) of character c's glyph is inked; 0 <= x < 5, 0 <= y < 7.
bool glyph_pixel(char c, int x, int y);

}  // namespace mclip
