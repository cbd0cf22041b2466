// The public live-video API (include/mclip/live.h) over the engine's pipeline (src/video).
#include "mclip/live.h"

#include <filesystem>

#include "api/model_access.h"
#include "common/error.h"
#include "video/pipeline.h"
#include "video/source.h"
#include "video/writer.h"
#include "zeroshot/zeroshot.h"

namespace mclip {

struct LiveSession::State {
    LiveOptions options;
    std::unique_ptr<VideoSource> source;
    LiveStats stats;
};

LiveSession::LiveSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
LiveSession::LiveSession(LiveSession&&) noexcept = default;
LiveSession& LiveSession::operator=(LiveSession&&) noexcept = default;
LiveSession::~LiveSession() = default;

namespace {

PipelineOptions pipeline_options(const LiveOptions& o) {
    PipelineOptions p;
    p.every_frame = o.every_frame;
    p.top_k = o.top_k;
    p.smoothing = {o.smoothing, o.threshold, o.hysteresis};
    p.video_out = o.video_out;
    p.show = o.show;
    p.dump_frames = o.dump_frames;
    p.max_frames = o.max_frames;
    return p;
}

LiveStats to_live_stats(const PipelineStats& s) {
    return {s.frames_read,   s.frames_processed, s.frames_dropped, s.frames_written, s.latency_ms,
            s.inference_ms,  s.seconds,          s.interrupted,    s.video_codec};
}

}  // namespace

LiveSession LiveSession::open(const LiveOptions& options) {
    if (options.top_k < 1) throw Error(ErrorCode::invalid_argument, "top_k must be at least 1");
    if (!(options.threshold >= 0 && options.threshold <= 1)) throw Error(ErrorCode::invalid_argument, "the threshold must be between 0 and 1");
    if (!(options.smoothing > 0 && options.smoothing <= 1)) throw Error(ErrorCode::invalid_argument, "smoothing must be in (0, 1] (1: none)");
    if (!(options.hysteresis >= 0 && options.hysteresis <= 1)) throw Error(ErrorCode::invalid_argument, "the hysteresis must be between 0 and 1");
    check_pipeline_source(source_kind(options.source), pipeline_options(options));
    if (!options.video_out.empty()) VideoWriter::check_target(options.video_out);
    SourceOptions source_options;
    source_options.input_format = options.input_format;
    source_options.input_options = options.input_options;
    source_options.folder_fps = options.folder_fps;
    source_options.stream_retries = options.retries;
    source_options.retry_delay_seconds = options.retry_delay_seconds;
    auto state = std::make_unique<State>();
    state->options = options;
    state->source = VideoSource::open(options.source, source_options);
    return LiveSession(std::move(state));
}

std::string LiveSession::description() const { return state_->source->description(); }

const LiveStats& LiveSession::stats() const { return state_->stats; }

void LiveSession::run(const Model& model, const LabelSet& labels, const std::atomic<bool>& stop,
                      const std::function<void(const LiveResult&)>& on_result) {
    const ClipModel& engine = ModelAccess::engine(model);
    if (labels.labels.empty() || labels.classes.dim != engine.config().embed_dim) {
        throw Error(ErrorCode::invalid_argument, "the label set does not belong to this model");
    }
    const ZeroShotClassifier classifier(labels.labels, Tensor::from_f32({labels.classes.rows, labels.classes.dim}, labels.classes.values),
                                        engine.logit_scale());
    PipelineOptions options = pipeline_options(state_->options);
    // A file or folder in real time is played at its own frame rate, as a camera would deliver it.
    const SourceKind kind = state_->source->kind();
    options.pace = !options.every_frame && (kind == SourceKind::file || kind == SourceKind::image_folder);
    if (!options.dump_frames.empty()) std::filesystem::create_directories(options.dump_frames);
    LivePipeline pipeline(*state_->source, engine, classifier, options);
    if (on_result) {
        pipeline.set_result_callback([&](const FrameResult& r) {
            LiveResult result;
            result.frame = r.frame;
            result.pts_seconds = r.pts_seconds;
            result.captured_unix = r.captured_unix;
            result.latency_ms = r.latency_ms;
            result.preprocess_ms = r.preprocess_ms;
            result.inference_ms = r.inference_ms;
            result.fps = r.processing_fps;
            result.unknown = r.decision.label < 0;
            result.label = result.unknown ? "unknown" : labels.labels[r.decision.label];
            result.confidence = r.decision.confidence;
            result.top = r.top;
            on_result(result);
        });
    }
    try {
        pipeline.run(stop);
    } catch (...) {
        state_->stats = to_live_stats(pipeline.stats());
        throw;
    }
    state_->stats = to_live_stats(pipeline.stats());
}

}  // namespace mclip
