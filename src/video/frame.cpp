#include "video/frame.h"

#include <cstdarg>
#include <mutex>

#include "common/error.h"
#include "common/log.h"
#include "video/ffmpeg_functions.h"

namespace mclip {

namespace {

void forward_ffmpeg_log(void* context, int level, const char* format, va_list arguments) {
    // FFmpeg's info and verbose levels are chatter (encoder settings, stream details).
    if (level > AV_LOG_WARNING || log_level() > LogLevel::debug) return;
    thread_local int print_prefix = 1;  // FFmpeg's state for messages printed in pieces
    char line[1024];
    ffmpeg().av_log_format_line2(context, level, format, arguments, line, sizeof(line), &print_prefix);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (!text.empty()) log_debug("ffmpeg: " + text);
}

}  // namespace

void initialize_ffmpeg() {
    static std::once_flag once;
    std::call_once(once, [] {
        ffmpeg().av_log_set_callback(forward_ffmpeg_log);
        ffmpeg().avdevice_register_all();
        ffmpeg().avformat_network_init();
    });
}

void AvFrameDeleter::operator()(AVFrame* frame) const { ffmpeg().av_frame_free(&frame); }

AvFramePtr allocate_av_frame() {
    AvFramePtr frame(ffmpeg().av_frame_alloc());
    if (!frame) throw Error(ErrorCode::internal, "out of memory allocating a video frame");
    return frame;
}

std::string pixel_format_name(int format) {
    const char* name = ffmpeg().av_get_pix_fmt_name(static_cast<AVPixelFormat>(format));
    return name ? name : "unknown (" + std::to_string(format) + ")";
}

std::string av_error_text(int code) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    ffmpeg().av_strerror(code, text, sizeof(text));
    return text;
}

}  // namespace mclip
