// A decoded video frame as it travels through the live pipeline: the decoder's pixels (in the
// decoder's own pixel format, never converted on the capture thread), its place in the source,
// and when it was captured, for latency.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

extern "C" {
struct AVFrame;
}

namespace mclip {

struct AvFrameDeleter {
    void operator()(AVFrame* frame) const;
};
using AvFramePtr = std::unique_ptr<AVFrame, AvFrameDeleter>;

// av_frame_alloc, or Error(internal) when out of memory.
AvFramePtr allocate_av_frame();

struct VideoFrame {
    AvFramePtr picture;
    int64_t index = 0;        // 0-based, in the order the source delivered frames
    double pts_seconds = 0;   // media time: from the stream's timestamps (files) or since the first frame (live)
    std::chrono::steady_clock::time_point captured;  // when the frame was handed to the pipeline
    double captured_unix = 0;                        // the same instant, seconds since 1970 (for JSON Lines)
};
using FramePtr = std::shared_ptr<const VideoFrame>;

// Registers FFmpeg's devices and network protocols and routes its log lines into mclip's log
// (as debug messages: mclip reports failures itself). Safe to call many times, from any thread.
void initialize_ffmpeg();

// "yuv420p", or "unknown (N)" for a format FFmpeg has no name for.
std::string pixel_format_name(int format);
// An FFmpeg error code as text ("No such file or directory").
std::string av_error_text(int code);

}  // namespace mclip
