// The annotation drawn on each output frame: the current label and its confidence in large type
// with a confidence bar, the top scores of the frame in small type, and the processing rate and
// latency, on a darkened box in the top-left corner. Drawn straight into the 4:2:0 planes the
// encoder and the window take, with the built-in bitmap font (bitmap_font.h); text is scaled
// with the frame (one font pixel per 240 lines of the shorter side).
#pragma once

#include <string>
#include <vector>

#include "video/rgb_convert.h"

extern "C" {
struct AVFrame;
}

namespace mclip {

struct OverlayContent {
    std::string headline;                // "cat 87%"
    bool unknown = false;                // drawn dimmer, with a grey bar
    float confidence = 0;                // 0..1, the bar's fill
    std::vector<std::string> details;    // "dog 12%", one line each
    std::string status;                  // "12.3 fps  45 ms"
};

// Draws onto a writable yuv420p frame and returns the rectangle it covered (clipped to the frame).
// Throws Error(internal) for another pixel format.
PixelRect draw_overlay(AVFrame& frame, const OverlayContent& content);

// Each UTF-8 character of `text` as one printable ASCII character ('?' for the others).
std::string printable_ascii(const std::string& text);

}  // namespace mclip
