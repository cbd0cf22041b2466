#include "video/frame.h"

#include <cstdarg>
#include <mutex>

extern "C" {
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
}

#include "common/error.h"
#include "common/log.h"

namespace mclip {

namespace {

void forward_ffmpeg_log(void* context, int level, const char* format, va_list arguments) {
    // FFmpeg's info and verbose levels are chatter (encoder settings, stream details).
    if (level > AV_LOG_WARNING || log_level() > LogLevel::debug) return;
    thread_local int print_prefix = 1;  // FFmpeg's state for messages printed in pieces
    char line[1024];
    av_log_format_line2(context, level, format, arguments, line, sizeof(line), &print_prefix);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (!text.empty()) log_debug("ffmpeg: " + text);
}

}  // namespace

void initialize_ffmpeg() {
    static std::once_flag once;
    std::call_once(once, [] {
        av_log_set_callback(forward_ffmpeg_log);
        avdevice_register_all();
        avformat_network_init();
    });
}

void AvFrameDeleter::operator()(AVFrame* frame) const { av_frame_free(&frame); }

AvFramePtr allocate_av_frame() {
    AvFramePtr frame(av_frame_alloc());
    if (!frame) throw Error(ErrorCode::internal, "out of memory allocating a video frame");
    return frame;
}

std::string pixel_format_name(int format) {
    const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(format));
    return name ? name : "unknown (" + std::to_string(format) + ")";
}

std::string av_error_text(int code) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(code, text, sizeof(text));
    return text;
}

}  // namespace mclip
