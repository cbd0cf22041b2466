// Where live frames come from, behind one interface:
//   - a V4L2 camera (/dev/videoN, through libavdevice),
//   - a video file (any container and codec FFmpeg's libraries decode),
//   - a network stream (rtsp://, rtmp://, http(s)://, udp://, tcp://, srt://),
//   - a folder of images (JPEG, PNG, WebP in name order, decoded as `mclip classify` decodes them).
// Frames come out in the decoder's own pixel format; nothing is converted here.
//
// A stream that fails or ends is reopened with exponential backoff (a finite HTTP file, one with
// a known duration, simply ends); a file that cannot be read ends the run with an error naming it.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "video/frame.h"

namespace mclip {

enum class SourceKind { file, device, stream, image_folder };

const char* to_string(SourceKind kind);
// What a --source argument names: a folder, a /dev/ device, a URL with a network scheme, or a file.
SourceKind source_kind(const std::string& spec);

struct SourceOptions {
    std::string input_format;  // force a demuxer or device ("v4l2", "mjpeg"); empty: guess
    std::vector<std::pair<std::string, std::string>> input_options;  // e.g. video_size=1280x720
    double folder_fps = 30;    // the frame rate given to a folder of images
    int stream_retries = 5;    // reconnection attempts in a row before a stream counts as lost
    double retry_delay_seconds = 0.5;      // the first wait; it doubles on each further attempt
    double retry_max_delay_seconds = 8;
    double stream_timeout_seconds = 10;    // no data for this long counts as a dropped stream
};

class VideoSource {
public:
    // Opens and probes the source; throws Error naming it when that fails (a missing device or
    // file, no video stream, no decoder).
    static std::unique_ptr<VideoSource> open(const std::string& spec, const SourceOptions& options = {});
    virtual ~VideoSource() = default;

    // The next frame, or nullopt at the end (or once the interrupt flag is set). Frames are
    // numbered from 0 in delivery order; `captured` is left for the caller to stamp.
    virtual std::optional<VideoFrame> read() = 0;

    virtual SourceKind kind() const = 0;
    // Nominal frames per second, or 0 when the source does not say.
    virtual double frame_rate() const = 0;
    // One line for logs: "clip.mp4: h264 1280x720 yuv420p, 30 fps".
    virtual std::string description() const = 0;
    // Blocking reads give up soon after this flag turns true (it must outlive the source).
    virtual void set_interrupt(const std::atomic<bool>* flag) = 0;
};

}  // namespace mclip
