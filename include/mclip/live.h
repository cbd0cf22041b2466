// Live recognition on a camera (/dev/video0), a video file, a network stream (rtsp://, http://…)
// or a folder of images: each frame is classified against a label set; late frames are dropped
// so the answer is about now (or, with every_frame, every frame of a file is processed in order);
// the answer can be drawn over the picture into a video file or a window. Part of the video
// component (FFmpeg), built when MCLIP_WITH_VIDEO is on.
//
//   mclip::LiveOptions options;
//   options.source = "/dev/video0";
//   mclip::LiveSession live = mclip::LiveSession::open(options);
//   std::atomic<bool> stop{false};
//   live.run(model, labels, stop, [](const mclip::LiveResult& r) { std::puts(r.label.c_str()); });
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mclip/export.h"
#include "mclip/mclip.h"

namespace mclip {

struct LiveOptions {
    std::string source;          // camera device, video file, stream URL or image folder
    std::string input_format;    // force an FFmpeg input format or device ("v4l2"); empty: guess
    std::vector<std::pair<std::string, std::string>> input_options;  // e.g. {"video_size", "1280x720"}
    double folder_fps = 30;      // frame rate given to a folder of images
    int retries = 5;             // reconnections before a dropped stream ends the run
    double retry_delay_seconds = 0.5;  // before the first reconnection; doubled on each further one
    bool every_frame = false;    // process every frame of a file or folder (offline analysis)
    int top_k = 3;
    // The shown label: an exponential moving average of the probabilities (weight `smoothing` on
    // the newest frame; 1: none), "unknown" below `threshold`, with `hysteresis` against flicker.
    float smoothing = 0.5f;
    float threshold = 0.6f;
    float hysteresis = 0.05f;
    std::string video_out;       // annotated video file (.mp4, .mkv …); empty: none
    bool show = false;           // a window with the annotated video, where there is a display
    std::string dump_frames;     // debug: each processed frame's RGB as DIR/frame_NNNNNN.png
    int64_t max_frames = 0;      // stop after reading this many frames; 0: no limit
};

struct LiveResult {
    int64_t frame = 0;
    double pts_seconds = 0;
    double captured_unix = 0;    // seconds since 1970 when the frame was captured
    double latency_ms = 0;       // capture → result
    double preprocess_ms = 0;
    double inference_ms = 0;     // image encoder and zero-shot scores
    double fps = 0;              // results per second over the last few
    std::string label;           // the smoothed label, or "unknown"
    float confidence = 0;        // its smoothed probability
    bool unknown = false;
    std::vector<Score> top;      // this frame alone, best first
};

struct LiveStats {
    int64_t frames_read = 0;
    int64_t frames_processed = 0;
    int64_t frames_dropped = 0;  // read but never processed
    int64_t frames_written = 0;  // to the annotated video
    std::vector<double> latency_ms;    // per processed frame
    std::vector<double> inference_ms;  // per processed frame
    double seconds = 0;          // first frame read → last result
    bool interrupted = false;    // stopped by the flag or the window rather than the source's end
    std::string video_codec;     // the annotated video's encoder, when one was written
};

class MCLIP_API LiveSession {
public:
    // Checks the options against the source (every_frame needs a file or folder; the output
    // video's format must be known) and opens the source; throws Error naming what is wrong.
    static LiveSession open(const LiveOptions& options);
    LiveSession(LiveSession&&) noexcept;
    LiveSession& operator=(LiveSession&&) noexcept;
    ~LiveSession();

    // One line for logs: "clip.mp4: h264 1280x720 yuv420p, 30 fps".
    std::string description() const;

    // Runs until the source ends, `stop` turns true, the window is closed or something fails;
    // on_result is called for every processed frame, in order, on the inference thread. The
    // outputs are finalized in every case, then the first error, if any, is rethrown.
    void run(const Model& model, const LabelSet& labels, const std::atomic<bool>& stop,
             const std::function<void(const LiveResult&)>& on_result);

    // The statistics of the last run (also after it threw).
    const LiveStats& stats() const;

private:
    struct State;
    explicit LiveSession(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace mclip
