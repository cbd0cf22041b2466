// The live window (SDL2): shows annotated frames as they are written. Where no display exists
// (no X11 or Wayland session, SDL_VIDEODRIVER unusable) opening fails softly with a warning, so
// `--show` on a server just runs without a window.
#pragma once

#include <memory>
#include <string>

extern "C" {
struct AVFrame;
}

namespace mclip {

class Display {
public:
    // nullptr (after a logged warning) when no window can be opened.
    static std::unique_ptr<Display> open(const std::string& title, int width, int height);
    ~Display();
    Display(const Display&) = delete;
    Display& operator=(const Display&) = delete;

    // Shows a yuv420p frame (scaled to the window).
    void show(const AVFrame& frame);
    // Handles pending window events; true once the user closed the window or pressed q or Esc.
    bool quit_requested();

private:
    Display() = default;
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace mclip
