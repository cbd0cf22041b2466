#include "video/display.h"

#include <SDL.h>

extern "C" {
#include <libavutil/frame.h>
}

#include "common/error.h"
#include "common/log.h"
#include "common/shared_library.h"

namespace mclip {

namespace {

// SDL2, opened when a window is first asked for (common/shared_library.h says why it is not linked).
#define MCLIP_SDL_FUNCTIONS(X) \
    X(SDL_CreateRenderer)      \
    X(SDL_CreateTexture)       \
    X(SDL_CreateWindow)        \
    X(SDL_DestroyRenderer)     \
    X(SDL_DestroyTexture)      \
    X(SDL_DestroyWindow)       \
    X(SDL_GetError)            \
    X(SDL_InitSubSystem)       \
    X(SDL_PollEvent)           \
    X(SDL_QuitSubSystem)       \
    X(SDL_RenderClear)         \
    X(SDL_RenderCopy)          \
    X(SDL_RenderPresent)       \
    X(SDL_SetHint)             \
    X(SDL_UpdateYUVTexture)

struct SdlFunctions {
#define MCLIP_SDL_POINTER(name) decltype(&::name) name;
    MCLIP_SDL_FUNCTIONS(MCLIP_SDL_POINTER)
#undef MCLIP_SDL_POINTER
};

struct LoadedSdl {
    SharedLibrary library{"libSDL2-2.0.so.0", "a window (--show)"};
    SdlFunctions functions;

    LoadedSdl() {
#define MCLIP_SDL_RESOLVE(name) library.resolve(functions.name, #name);
        MCLIP_SDL_FUNCTIONS(MCLIP_SDL_RESOLVE)
#undef MCLIP_SDL_RESOLVE
    }
};

const SdlFunctions& sdl() {
    static const LoadedSdl loaded;
    return loaded.functions;
}

}  // namespace

struct Display::State {
    SDL_Window* window = nullptr;
    SDL_Renderer* renderer = nullptr;
    SDL_Texture* texture = nullptr;
    int width = 0;
    int height = 0;
    bool quit = false;

    ~State() {
        if (texture) sdl().SDL_DestroyTexture(texture);
        if (renderer) sdl().SDL_DestroyRenderer(renderer);
        if (window) sdl().SDL_DestroyWindow(window);
        sdl().SDL_QuitSubSystem(SDL_INIT_VIDEO);
    }
};

std::unique_ptr<Display> Display::open(const std::string& title, int width, int height) {
    try {
        sdl();
    } catch (const Error& e) {
        log_warning(std::string(e.what()) + "; running without a window");
        return nullptr;
    }
    // Ctrl-C stays ours: it must finalize the outputs, not just close SDL.
    sdl().SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
    if (sdl().SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
        log_warning(std::string("no display for --show (") + sdl().SDL_GetError() + "); running without a window");
        return nullptr;
    }
    std::unique_ptr<Display> display(new Display);
    display->state_ = std::make_unique<State>();
    State& s = *display->state_;
    s.width = width;
    s.height = height;
    s.window = sdl().SDL_CreateWindow(title.c_str(), SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, width, height, SDL_WINDOW_RESIZABLE);
    if (s.window) s.renderer = sdl().SDL_CreateRenderer(s.window, -1, 0);
    if (s.renderer) s.texture = sdl().SDL_CreateTexture(s.renderer, SDL_PIXELFORMAT_IYUV, SDL_TEXTUREACCESS_STREAMING, width, height);
    if (!s.texture) {
        log_warning(std::string("cannot open a window for --show (") + sdl().SDL_GetError() + "); running without one");
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
    sdl().SDL_UpdateYUVTexture(s.texture, nullptr, frame.data[0], frame.linesize[0], frame.data[1], frame.linesize[1], frame.data[2],
                         frame.linesize[2]);
    sdl().SDL_RenderClear(s.renderer);
    sdl().SDL_RenderCopy(s.renderer, s.texture, nullptr, nullptr);
    sdl().SDL_RenderPresent(s.renderer);
}

bool Display::quit_requested() {
    State& s = *state_;
    SDL_Event event;
    while (sdl().SDL_PollEvent(&event)) {
        if (event.type == SDL_QUIT) s.quit = true;
        if (event.type == SDL_KEYDOWN && (event.key.keysym.sym == SDLK_q || event.key.keysym.sym == SDLK_ESCAPE)) s.quit = true;
    }
    return s.quit;
}

}  // namespace mclip
