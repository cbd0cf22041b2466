#include "video/ffmpeg_functions.h"

#include "common/shared_library.h"

namespace mclip {

namespace {

#define MCLIP_STRINGIFY_VALUE(x) #x
#define MCLIP_SONAME(library, major) "lib" #library ".so." MCLIP_STRINGIFY_VALUE(major)

// The sonames of the FFmpeg these headers belong to, so that the functions' types match.
struct FfmpegLibraries {
    SharedLibrary avutil{MCLIP_SONAME(avutil, LIBAVUTIL_VERSION_MAJOR), "live video"};
    SharedLibrary swscale{MCLIP_SONAME(swscale, LIBSWSCALE_VERSION_MAJOR), "live video"};
    SharedLibrary avcodec{MCLIP_SONAME(avcodec, LIBAVCODEC_VERSION_MAJOR), "live video"};
    SharedLibrary avformat{MCLIP_SONAME(avformat, LIBAVFORMAT_VERSION_MAJOR), "live video"};
    SharedLibrary avdevice{MCLIP_SONAME(avdevice, LIBAVDEVICE_VERSION_MAJOR), "live video"};
};

struct Loaded {
    FfmpegLibraries libraries;
    FfmpegFunctions functions;

    Loaded() {
#define MCLIP_FFMPEG_RESOLVE(library, name) libraries.library.resolve(functions.name, #name);
        MCLIP_FFMPEG_FUNCTIONS(MCLIP_FFMPEG_RESOLVE)
#undef MCLIP_FFMPEG_RESOLVE
    }
};

}  // namespace

// A static's initialization is thread-safe, and one that throws is tried again by the next call.
const FfmpegFunctions& ffmpeg() {
    static const Loaded loaded;
    return loaded.functions;
}

}  // namespace mclip
