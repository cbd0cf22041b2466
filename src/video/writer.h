// The annotated video: yuv420p frames encoded with libavcodec (H.264 through libx264 when the
// FFmpeg build has it, else MPEG-4 part 2) into the container the file name asks for (.mp4,
// .mkv, .avi, ...). Like every mclip output it is written atomically: into a temporary file
// beside the target, renamed over it by finish() once the trailer is written, so an interrupted
// run leaves either a playable file or none.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

extern "C" {
struct AVFrame;
}

namespace mclip {

class VideoWriter {
public:
    // width and height must be even (4:2:0); frame_rate is the nominal rate of the timestamps.
    VideoWriter(const std::filesystem::path& path, int width, int height, double frame_rate);
    ~VideoWriter();  // without finish(): the temporary file is removed

    // Throws Error when `path` cannot receive a video: no container for its extension, or no
    // such folder. Lets a command refuse a bad --out before it starts working.
    static void check_target(const std::filesystem::path& path);
    VideoWriter(const VideoWriter&) = delete;
    VideoWriter& operator=(const VideoWriter&) = delete;

    // A yuv420p frame of the writer's size shown at `seconds` (timestamps are kept increasing).
    void write(AVFrame& frame, double seconds);
    // Flushes the encoder, writes the trailer and moves the file into place.
    void finish();

    const std::string& codec_name() const;
    int64_t frames_written() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace mclip
