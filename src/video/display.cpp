#include "video/display.h"

#include <SDL.h>

extern "C" {
#include <libavutil/frame.h>
}

#include "common/error.h"
#include "common/log.h"

namespace mclip {

struct Display::State {
    SDL_Window* window = nullptr;
    SDL_Renderer* renderer = nullptr;
    SDL_Texture* texture = nullptr;
    int width = 0;
    int height = 0;
    bool quit = false;

    ~State() {
        if (texture) SDL_DestroyTexture(texture);
        if (renderer) SDL_DestroyRenderer(renderer);
        if (window) SDL_DestroyWindow(window);
        SDL_QuitSubSystem(SDL_INIT_VIDEO);
    }
};

std::unique_ptr<Display> Display::open(const std::string& title, int width, int height) {
    // Ctrl-C stays ours: it must finalize the outputs, not just close SDL.
    SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
    if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
        log_warning(std::string("no display for --show (") + SDL_GetError() + "); running without a window");
        return nullptr;
    }
    std::unique_ptr<Display> display(new Display);
    display->state_ = std::make_unique<State>();
    State& s = *display->state_;
    s.width = width;
    s.height = height;
    s.window = SDL_CreateWindow(title.c_str(), SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, width, height, SDL_WINDOW_RESIZABLE);
    if (s.window) s.renderer = SDL_CreateRenderer(s.window, -1, 0);
    if (s.renderer) s.texture = SDL_CreateTexture(s.renderer, SDL_PIXELFORMAT_IYUV, SDL_TEXTUREACCESS_STREAMING, width, height);
    if (!s.texture) {
        log_warning(std::string("cannot open a window for --show (") + SDL_GetError() + "); running without one");
        return nullptr;
    }
    return display;
}

Display::~Display() = default;

void Display::show(const AVFrame& frame) {
    State& s = *state_;
    if (frame.format != AV_PIX_FMT_YUV420P || frame.width != s.width || frame.height != s.height) {
        throw Error(ErrorCode::internal, "display got a frame of another size or format");
    }
    SDL_UpdateYUVTexture(s.texture, nullptr, frame.data[0], frame.linesize[0], frame.data[1], frame.linesize[1], frame.data[2],
                         frame.linesize[2]);
    SDL_RenderClear(s.renderer);
    SDL_RenderCopy(s.renderer, s.texture, nullptr, nullptr);
    SDL_RenderPresent(s.renderer);
}

bool Display::quit_requested() {
    State& s = *state_;
    SDL_Event event;
    while (SDL_PollEvent(&event)) {
        if (event.type == SDL_QUIT) s.quit = true;
        if (event.type == SDL_KEYDOWN && (event.key.keysym.sym == SDLK_q || event.key.keysym.sym == SDLK_ESCAPE)) s.quit = true;
    }
    return s.quit;
}

}  // namespace mclip
