// The live pipeline: capture → preprocessing → inference, each on its own thread, plus the
// annotated output (video file, window) on the calling thread.
//
//   capture thread      reads and decodes frames (paced to their timestamps for a file in
//                       real-time mode, as a camera would deliver them), stamps the capture time
//   ──► latest slot ──  one frame; a newer frame replaces an unconsumed one, which is dropped
//                       and counted (--every-frame: the capture waits instead, nothing is lost)
//   preprocess thread   frame → model input (frame_tensor.h)
//   ──► hand-off ─────  one input, waiting for the model
//   inference thread    owns the model's work: image embedding, zero-shot scores, smoothing
//   output (caller)     every frame read, in order, annotated with the newest result at or before
//                       it (--every-frame: its own result) → video writer and window
//
// Memory is bounded whatever the speeds: one frame in each slot and a few frames queued for the
// writer. Stopping (the flag, the window closed, an error) cancels the slots, lets the inference
// in flight finish, writes the frames already read and finalizes the video.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "video/smoothing.h"
#include "video/source.h"
#include "zeroshot/zeroshot.h"

namespace mclip {

struct PipelineOptions {
    bool every_frame = false;  // process every frame in order instead of dropping late ones
    bool pace = true;          // deliver frames at their timestamps (for files and folders in real time)
    int top_k = 3;
    SmoothingOptions smoothing;
    std::filesystem::path video_out;    // annotated video; empty: none
    bool show = false;                  // live window where a display exists
    std::filesystem::path dump_frames;  // debug: each processed frame's RGB as frame_NNNNNN.png
    int64_t max_frames = 0;             // stop after reading this many frames; 0: no limit
    size_t output_queue_frames = 8;     // frames waiting for the writer before the capture waits
};

struct FrameResult {
    int64_t frame = 0;
    double pts_seconds = 0;
    double captured_unix = 0;   // seconds since 1970 when the frame was captured
    double latency_ms = 0;      // capture → result
    double preprocess_ms = 0;
    double inference_ms = 0;    // image encoder and zero-shot scores
    double processing_fps = 0;  // results per second over the last few results
    std::vector<Score> top;  // this frame alone, best first (as `mclip classify` reports it)
    SmoothedDecision decision;    // the smoothed, hysteresis-held label
};

struct PipelineStats {
    int64_t frames_read = 0;
    int64_t frames_processed = 0;
    int64_t frames_dropped = 0;   // read but never processed (replaced in the slot, or cut off by a stop)
    int64_t frames_written = 0;   // to the annotated video
    std::vector<double> latency_ms;    // per processed frame, capture → result
    std::vector<double> inference_ms;  // per processed frame
    double seconds = 0;           // first frame read → last result
    bool interrupted = false;     // stopped by the flag or the window rather than the source's end
    std::string video_codec;      // the annotated video's encoder, when one was written
};

// Throws Error(invalid_argument) for options the source cannot honour (--every-frame on a camera
// or stream, which cannot wait for the model).
void check_pipeline_source(SourceKind kind, const PipelineOptions& options);

class LivePipeline {
public:
    LivePipeline(VideoSource& source, const ClipModel& model, const ZeroShotClassifier& classifier, PipelineOptions options);
    ~LivePipeline();

    // Called on the inference thread for every processed frame, in order; an exception thrown
    // here stops the run like any other error.
    void set_result_callback(std::function<void(const FrameResult&)> callback);

    // Runs until the source ends, `stop` turns true, the window is closed or something fails.
    // The outputs are finalized in every case; then the first error, if any, is rethrown.
    void run(const std::atomic<bool>& stop);

    const PipelineStats& stats() const { return stats_; }

private:
    struct Run;
    VideoSource& source_;
    const ClipModel& model_;
    const ZeroShotClassifier& classifier_;
    PipelineOptions options_;
    std::function<void(const FrameResult&)> callback_;
    PipelineStats stats_;
};

}  // namespace mclip
