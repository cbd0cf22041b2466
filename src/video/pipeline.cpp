#include "video/pipeline.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "mclip/atomic_file.h"
#include "mclip/image.h"
#include "models/config.h"
#include "video/display.h"
#include "video/ffmpeg_functions.h"
#include "video/frame_tensor.h"
#include "video/latest_slot.h"
#include "video/overlay.h"
#include "video/writer.h"

namespace mclip {

namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct PreparedInput {
    FramePtr frame;
    Tensor input;
    double preprocess_ms = 0;
};

// Frames as the writer and the window take them: yuv420p at one even size (the first frame's,
// an odd last row or column cropped off). A yuv420p source is copied; others go through swscale.
class OutputFrames {
public:
    AVFrame& convert(const AVFrame& source) {
        if (!out_) {
            width_ = std::max(2, source.width & ~1);
            height_ = std::max(2, source.height & ~1);
            out_ = allocate_av_frame();
            out_->format = AV_PIX_FMT_YUV420P;
            out_->width = width_;
            out_->height = height_;
            if (ffmpeg().av_frame_get_buffer(out_.get(), 0) < 0) throw Error(ErrorCode::internal, "out of memory for the output frame");
        }
        // The encoder may still hold a reference to the previous frame's buffer: never draw into it.
        if (ffmpeg().av_frame_make_writable(out_.get()) < 0) throw Error(ErrorCode::internal, "out of memory for the output frame");
        if (source.format == AV_PIX_FMT_YUV420P && source.width == width_ && source.height == height_ &&
            source.color_range != AVCOL_RANGE_JPEG) {
            ffmpeg().av_frame_copy(out_.get(), &source);
            return *out_;
        }
        // Reading only the even part of an odd-sized frame crops it instead of scaling it.
        const bool crop = source.width - width_ >= 0 && source.width - width_ <= 1 && source.height - height_ >= 0 &&
                          source.height - height_ <= 1;
        const int source_width = crop ? width_ : source.width, source_height = crop ? height_ : source.height;
        const auto format = static_cast<AVPixelFormat>(source.format);
        scaler_ = ffmpeg().sws_getCachedContext(scaler_, source_width, source_height, format, width_, height_, AV_PIX_FMT_YUV420P,
                                       SWS_BILINEAR, nullptr, nullptr, nullptr);
        if (!scaler_) throw Error(ErrorCode::unsupported, "cannot convert pixel format " + pixel_format_name(source.format) + " for the output video");
        const auto* desc = ffmpeg().av_pix_fmt_desc_get(format);
        const bool source_full_range = source.color_range == AVCOL_RANGE_JPEG || (desc && std::string(desc->name).rfind("yuvj", 0) == 0) ||
                                       (desc && (desc->flags & AV_PIX_FMT_FLAG_RGB));
        ffmpeg().sws_setColorspaceDetails(scaler_, ffmpeg().sws_getCoefficients(SWS_CS_DEFAULT), source_full_range ? 1 : 0,
                                 ffmpeg().sws_getCoefficients(SWS_CS_DEFAULT), 0, 0, 1 << 16, 1 << 16);
        ffmpeg().sws_scale(scaler_, source.data, source.linesize, 0, source_height, out_->data, out_->linesize);
        return *out_;
    }

    int width() const { return width_; }
    int height() const { return height_; }
    ~OutputFrames() { ffmpeg().sws_freeContext(scaler_); }

private:
    AvFramePtr out_;
    SwsContext* scaler_ = nullptr;
    int width_ = 0;
    int height_ = 0;
};

std::string percent(float probability) {
    char text[16];
    std::snprintf(text, sizeof(text), "%.0f%%", 100.0 * probability);
    return text;
}

OverlayContent overlay_content(const std::optional<FrameResult>& result, const std::vector<std::string>& labels) {
    OverlayContent content;
    if (!result) {
        content.headline = "...";
        content.unknown = true;
        return content;
    }
    const SmoothedDecision& d = result->decision;
    content.unknown = d.label < 0;
    content.confidence = d.confidence;
    // Unknown: the best guess is still listed below, and its confidence fills the (grey) bar.
    content.headline = d.label >= 0 ? labels[d.label] + " " + percent(d.confidence) : "unknown";
    for (const auto& score : result->top) content.details.push_back(labels[score.index] + " " + percent(score.probability));
    char status[64];
    std::snprintf(status, sizeof(status), "%.1f fps  %.0f ms", result->processing_fps, result->latency_ms);
    content.status = status;
    return content;
}

}  // namespace

// Everything the threads of one run share.
struct LivePipeline::Run {
    LivePipeline& owner;
    const PipelineOptions& options;
    const bool has_outputs;
    const double source_frame_rate;  // read once: a reconnecting stream may change it on the capture thread

    std::atomic<bool> stopping{false};
    std::atomic<bool> interrupted{false};
    std::mutex error_mutex;
    std::exception_ptr error;

    LatestSlot<FramePtr> captured;
    LatestSlot<PreparedInput> prepared;
    BoundedQueue<FramePtr> to_output;

    std::atomic<int64_t> frames_read{0};
    std::atomic<int64_t> frames_dropped{0};
    // When the model expects to be free (steady clock, ns): the end of the inference in progress,
    // or the moment it went idle. Stored before inputs_started counts the input it belongs to.
    std::atomic<int64_t> model_free_at{0};
    std::atomic<int64_t> inputs_started{0};

    // Results, for the output thread and the statistics.
    std::mutex results_mutex;
    std::condition_variable results_changed;
    std::deque<FrameResult> recent;  // the newest results, oldest first
    bool inference_done = false;
    std::vector<double> latency_ms;
    std::vector<double> inference_ms;
    std::optional<Clock::time_point> first_capture;
    std::optional<Clock::time_point> last_result;

    Run(LivePipeline& pipeline, const PipelineOptions& opts)
        : owner(pipeline),
          options(opts),
          has_outputs(!opts.video_out.empty() || opts.show),
          source_frame_rate(pipeline.source_.frame_rate()),
          captured(opts.every_frame ? LatestSlot<FramePtr>::Mode::wait : LatestSlot<FramePtr>::Mode::replace),
          prepared(LatestSlot<PreparedInput>::Mode::wait),
          to_output(opts.output_queue_frames) {}

    void stop() {
        if (stopping.exchange(true)) return;
        frames_dropped += static_cast<int64_t>(captured.cancel());
        frames_dropped += static_cast<int64_t>(prepared.cancel());
        to_output.close();
    }

    void fail(std::exception_ptr e) {
        {
            std::lock_guard lock(error_mutex);
            if (!error) error = e;
        }
        stop();
    }

    // Sleeps until `until` in short steps; false when stopped meanwhile.
    bool wait_until(Clock::time_point until) {
        while (Clock::now() < until) {
            if (stopping) return false;
            std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(20)));
        }
        return !stopping;
    }

    void capture_loop() {
        try {
            std::optional<Clock::time_point> origin;
            double origin_pts = 0;
            while (!stopping) {
                if (options.max_frames > 0 && frames_read >= options.max_frames) break;
                std::optional<VideoFrame> frame = owner.source_.read();
                if (!frame) break;
                if (options.pace) {
                    // A file plays at its own speed, the way a camera would hand its frames over.
                    if (!origin) {
                        origin = Clock::now();
                        origin_pts = frame->pts_seconds;
                    } else {
                        const auto offset = std::chrono::duration<double>(std::max(0.0, frame->pts_seconds - origin_pts));
                        if (!wait_until(*origin + std::chrono::duration_cast<Clock::duration>(offset))) break;
                    }
                }
                frame->captured = Clock::now();
                frame->captured_unix = unix_now();
                {
                    std::lock_guard lock(results_mutex);
                    if (!first_capture) first_capture = frame->captured;
                }
                auto shared = std::make_shared<const VideoFrame>(std::move(*frame));
                ++frames_read;
                if (has_outputs && !to_output.push(shared)) {
                    ++frames_dropped;
                    break;
                }
                const PutOutcome outcome = captured.put(std::move(shared));
                if (outcome != PutOutcome::stored) ++frames_dropped;  // the replaced frame, or this one after a stop
                if (outcome == PutOutcome::closed) break;
            }
        } catch (...) {
            fail(std::current_exception());
        }
        captured.close();
        to_output.close();
    }

    // Just in time: the newest frame is taken when the model is about to be free, not as soon as
    // there is room for its input, which would make it wait a whole inference. Returns false when
    // stopped meanwhile.
    bool wait_for_model(int64_t inputs_handed, double typical_preprocess_ms) {
        // The model has taken the last input; wait (briefly) until it has said when it will be done.
        while (inputs_started.load() < inputs_handed) {
            if (stopping) return false;
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        const auto lead = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(typical_preprocess_ms + 1.0));
        while (true) {
            // Read again each step: an inference that ends early moves the time forward.
            const auto start_at = Clock::time_point(Clock::duration(model_free_at.load())) - lead;
            const auto now = Clock::now();
            if (now >= start_at) return true;
            if (stopping) return false;
            std::this_thread::sleep_for(std::min<Clock::duration>(start_at - now, std::chrono::milliseconds(5)));
        }
    }

    void preprocess_loop() {
        try {
            FrameTensorizer tensorizer(owner.model_.config().preprocess);
            const int size = tensorizer.input_size();
            double typical_preprocess_ms = 0;
            int64_t inputs_handed = 0;
            while (prepared.wait_until_empty()) {
                if (!options.every_frame && !wait_for_model(inputs_handed, typical_preprocess_ms)) break;
                std::optional<FramePtr> frame = captured.take();
                if (!frame) break;
                const auto start = Clock::now();
                PreparedInput item{*frame, Tensor::zeros_f32({1, 3, size, size}), 0};
                tensorizer.run(*(*frame)->picture, item.input.f32());
                item.preprocess_ms = milliseconds_between(start, Clock::now());
                typical_preprocess_ms = typical_preprocess_ms == 0 ? item.preprocess_ms : 0.8 * typical_preprocess_ms + 0.2 * item.preprocess_ms;
                if (!options.dump_frames.empty()) {
                    char name[32];
                    std::snprintf(name, sizeof(name), "frame_%06lld.png", static_cast<long long>((*frame)->index));
                    const auto png = encode_png(tensorizer.to_image(*(*frame)->picture));
                    write_file_atomically(options.dump_frames / name, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
                }
                if (prepared.put(std::move(item)) == PutOutcome::closed) {
                    ++frames_dropped;
                    break;
                }
                ++inputs_handed;
            }
        } catch (...) {
            fail(std::current_exception());
        }
        prepared.close();
    }

    void inference_loop() {
        try {
            const int classes = static_cast<int>(owner.classifier_.labels().size());
            ScoreSmoother smoother(classes, options.smoothing);
            std::deque<Clock::time_point> result_times;
            std::vector<float> probabilities(classes);
            double typical_inference_ms = 0;
            while (true) {
                model_free_at = Clock::now().time_since_epoch().count();  // idle until an input comes
                std::optional<PreparedInput> item = prepared.take();
                if (!item) break;
                const auto start = Clock::now();
                const auto expected = std::chrono::duration<double, std::milli>(typical_inference_ms);
                model_free_at = (start + std::chrono::duration_cast<Clock::duration>(expected)).time_since_epoch().count();
                ++inputs_started;
                const Tensor embedding = owner.model_.encode_images(item->input);
                // All classes, for the smoothing; the first top_k are the frame's own answer.
                const Classification scores = owner.classifier_.classify(embedding.f32(), classes, options.smoothing.threshold);
                for (const Score& s : scores.top) probabilities[s.index] = s.probability;
                FrameResult result;
                result.decision = smoother.update(probabilities);
                const auto done = Clock::now();
                const VideoFrame& frame = *item->frame;
                result.frame = frame.index;
                result.pts_seconds = frame.pts_seconds;
                result.captured_unix = frame.captured_unix;
                result.latency_ms = milliseconds_between(frame.captured, done);
                result.preprocess_ms = item->preprocess_ms;
                result.inference_ms = milliseconds_between(start, done);
                typical_inference_ms = typical_inference_ms == 0 ? result.inference_ms : 0.8 * typical_inference_ms + 0.2 * result.inference_ms;
                result.top.assign(scores.top.begin(), scores.top.begin() + std::min<size_t>(scores.top.size(), std::max(options.top_k, 1)));
                result_times.push_back(done);
                if (result_times.size() > 16) result_times.pop_front();
                const double span = std::chrono::duration<double>(result_times.back() - result_times.front()).count();
                result.processing_fps = span > 0 ? static_cast<double>(result_times.size() - 1) / span : 1000.0 / std::max(result.inference_ms, 1e-3);
                if (owner.callback_) owner.callback_(result);
                {
                    std::lock_guard lock(results_mutex);
                    latency_ms.push_back(result.latency_ms);
                    inference_ms.push_back(result.inference_ms);
                    last_result = done;
                    recent.push_back(std::move(result));
                    if (recent.size() > 256) recent.pop_front();
                }
                results_changed.notify_all();
            }
        } catch (...) {
            fail(std::current_exception());
        }
        {
            std::lock_guard lock(results_mutex);
            inference_done = true;
        }
        results_changed.notify_all();
    }

    // The newest result at or before frame `index`; with --every-frame (until a stop), waits for
    // the frame's own result.
    std::optional<FrameResult> result_for(int64_t index, const std::function<void()>& poll_stop) {
        std::unique_lock lock(results_mutex);
        if (options.every_frame) {
            while (!stopping && !inference_done && (recent.empty() || recent.back().frame < index)) {
                results_changed.wait_for(lock, std::chrono::milliseconds(50));
                lock.unlock();
                poll_stop();
                lock.lock();
            }
        }
        for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
            if (it->frame <= index) return *it;
        }
        return std::nullopt;
    }

    void output_loop(const std::atomic<bool>& stop_flag) {
        std::unique_ptr<Display> display;
        bool display_tried = false;
        const auto poll_stop = [&] {
            if (stopping) return;
            if (stop_flag || (display && display->quit_requested())) {
                interrupted = true;
                stop();
            }
        };
        if (!has_outputs) {
            std::unique_lock lock(results_mutex);
            while (!inference_done) {
                results_changed.wait_for(lock, std::chrono::milliseconds(50));
                lock.unlock();
                poll_stop();
                lock.lock();
            }
            return;
        }
        OutputFrames frames;
        std::unique_ptr<VideoWriter> writer;
        bool output_failed = false;
        bool finished = false;
        while (!finished) {
            poll_stop();
            std::optional<FramePtr> frame = to_output.pop_for(std::chrono::milliseconds(50), finished);
            if (!frame || output_failed) continue;
            try {
                const std::optional<FrameResult> result = result_for((*frame)->index, poll_stop);
                AVFrame& picture = frames.convert(*(*frame)->picture);
                draw_overlay(picture, overlay_content(result, owner.classifier_.labels()));
                if (!writer && !options.video_out.empty()) {
                    writer = std::make_unique<VideoWriter>(options.video_out, frames.width(), frames.height(),
                                                           source_frame_rate > 0 ? source_frame_rate : 30.0);
                }
                if (writer) writer->write(picture, (*frame)->pts_seconds);
                if (options.show && !display_tried) {
                    display_tried = true;
                    display = Display::open("mclip live", frames.width(), frames.height());
                }
                if (display) display->show(picture);
            } catch (...) {
                output_failed = true;
                fail(std::current_exception());
            }
        }
        if (writer) {
            try {
                if (!output_failed) writer->finish();
                owner.stats_.frames_written = writer->frames_written();
                owner.stats_.video_codec = writer->codec_name();
            } catch (...) {
                fail(std::current_exception());
            }
        }
    }
};

void check_pipeline_source(SourceKind kind, const PipelineOptions& options) {
    if (options.every_frame && (kind == SourceKind::device || kind == SourceKind::stream)) {
        throw Error(ErrorCode::invalid_argument, "--every-frame needs a file or a folder: a live source cannot wait for the model");
    }
}

LivePipeline::LivePipeline(VideoSource& source, const ClipModel& model, const ZeroShotClassifier& classifier, PipelineOptions options)
    : source_(source), model_(model), classifier_(classifier), options_(std::move(options)) {
    check_pipeline_source(source.kind(), options_);
}

LivePipeline::~LivePipeline() = default;

void LivePipeline::set_result_callback(std::function<void(const FrameResult&)> callback) { callback_ = std::move(callback); }

void LivePipeline::run(const std::atomic<bool>& stop) {
    stats_ = PipelineStats{};
    Run run(*this, options_);
    source_.set_interrupt(&run.stopping);
    std::thread capture([&] { run.capture_loop(); });
    std::thread preprocess([&] { run.preprocess_loop(); });
    std::thread inference([&] { run.inference_loop(); });
    run.output_loop(stop);
    capture.join();
    preprocess.join();
    inference.join();
    source_.set_interrupt(nullptr);

    stats_.frames_read = run.frames_read;
    stats_.frames_dropped = run.frames_dropped;
    stats_.frames_processed = static_cast<int64_t>(run.latency_ms.size());
    stats_.latency_ms = std::move(run.latency_ms);
    stats_.inference_ms = std::move(run.inference_ms);
    stats_.interrupted = run.interrupted;
    if (run.first_capture && run.last_result) {
        stats_.seconds = std::chrono::duration<double>(*run.last_result - *run.first_capture).count();
    }
    if (run.error) std::rethrow_exception(run.error);
}

}  // namespace mclip
