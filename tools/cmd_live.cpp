// `mclip live`: recognition on a camera, a video file, a network stream or a folder of images.
// Each frame is classified against the labels; the answer is drawn over the picture (--out,
// --show) and logged (--jsonl); late frames are dropped so the answer is about now, unless
// --every-frame asks for offline analysis of every frame.
//
//   mclip live --model s0.gguf --labels "person,forklift,car" --source /dev/video0 --show
//   mclip live --model s0.gguf --preset coco --source clip.mp4 --out annotated.mp4 --jsonl events.jsonl
//
// Ctrl-C stops cleanly: the outputs are finalized and the statistics printed.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "command.h"
#include "label_options.h"
#include "mclip/atomic_file.h"
#include "mclip/live.h"
#include "model_options.h"
#include "stats.h"

namespace {

struct LiveArgs {
    mclip::tools::ModelOptions model;
    std::string source;
    mclip::tools::LabelOptions labels;
    std::vector<std::string> templates;
    mclip::tools::CacheOptions cache;
    int top_k = 3;
    float threshold = 0.6f;
    float smooth = 0.5f;
    float hysteresis = 0.05f;
    bool every_frame = false;
    std::string jsonl;
    std::string out;
    bool show = false;
    std::string stats;
    std::string dump_frames;
    int64_t max_frames = 0;
    double folder_fps = 30;
    std::string input_format;
    std::vector<std::string> input_options;
    int retries = 5;
    double retry_delay = 0.5;
};

// Set by SIGINT/SIGTERM; a lock-free atomic store is async-signal-safe.
std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int) { stop_requested.store(true); }

// The first Ctrl-C asks for a clean stop; the handler then resets, so a second one kills.
void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = request_stop;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

// Where JSON Lines go: a file written atomically (complete on commit), or standard output.
class EventLog {
public:
    explicit EventLog(const std::string& path) {
        if (path == "-") {
            to_stdout_ = true;
        } else if (!path.empty()) {
            file_.emplace(path);
        }
    }

    void write(const nlohmann::json& line) {
        const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        if (to_stdout_) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        } else if (file_) {
            file_->write(text);
        }
    }

    void commit() {
        if (file_) file_->commit();
    }

private:
    bool to_stdout_ = false;
    std::optional<mclip::AtomicFile> file_;
};

nlohmann::json result_json(const mclip::LiveResult& r) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& s : r.top) {
        top.push_back({{"label", s.label}, {"probability", s.probability}, {"logit", s.logit}, {"cosine", s.cosine}});
    }
    return {{"frame", r.frame},
            {"pts", r.pts_seconds},
            {"timestamp", r.captured_unix},
            {"latency_ms", r.latency_ms},
            {"preprocess_ms", r.preprocess_ms},
            {"inference_ms", r.inference_ms},
            {"fps", r.fps},
            {"label", r.label},
            {"confidence", r.confidence},
            {"unknown", r.unknown},
            {"top_k", top}};
}

nlohmann::json stats_json(const mclip::LiveStats& s, const std::string& source) {
    using mclip::tools::percentile;
    return {{"source", source},
            {"frames_read", s.frames_read},
            {"frames_processed", s.frames_processed},
            {"frames_dropped", s.frames_dropped},
            {"frames_written", s.frames_written},
            {"latency_median_ms", percentile(s.latency_ms, 50)},
            {"latency_p90_ms", percentile(s.latency_ms, 90)},
            {"inference_median_ms", percentile(s.inference_ms, 50)},
            {"processing_fps", s.seconds > 0 ? static_cast<double>(s.frames_processed) / s.seconds : 0.0},
            {"seconds", s.seconds},
            {"interrupted", s.interrupted},
            {"video_codec", s.video_codec}};
}

void print_summary(const nlohmann::json& s, const std::string& out) {
    if (mclip::log_level() > mclip::LogLevel::warning) return;
    const auto read = s["frames_read"].get<int64_t>();
    const auto dropped = s["frames_dropped"].get<int64_t>();
    std::fprintf(stderr, "mclip live: %lld frames read, %lld processed, %lld dropped (%.1f%%)%s\n", static_cast<long long>(read),
                 static_cast<long long>(s["frames_processed"].get<int64_t>()), static_cast<long long>(dropped),
                 read > 0 ? 100.0 * static_cast<double>(dropped) / static_cast<double>(read) : 0.0,
                 s["interrupted"].get<bool>() ? ", stopped early" : "");
    std::fprintf(stderr, "  latency capture to result: median %.1f ms, p90 %.1f ms (inference median %.1f ms)\n",
                 s["latency_median_ms"].get<double>(), s["latency_p90_ms"].get<double>(), s["inference_median_ms"].get<double>());
    std::fprintf(stderr, "  processing: %.2f frames/s over %.1f s\n", s["processing_fps"].get<double>(), s["seconds"].get<double>());
    if (!out.empty()) {
        std::fprintf(stderr, "  annotated video: %s, %lld frames (%s)\n", out.c_str(),
                     static_cast<long long>(s["frames_written"].get<int64_t>()), s["video_codec"].get<std::string>().c_str());
    }
}

int run_live(const LiveArgs& args) {
    const std::vector<std::string> labels = mclip::tools::gather_labels(args.labels);
    const std::vector<std::string> templates = args.templates.empty() ? mclip::default_templates() : args.templates;
    mclip::validate_templates(templates);

    mclip::LiveOptions options;
    options.source = args.source;
    options.input_format = args.input_format;
    for (const auto& option : args.input_options) {
        const size_t equals = option.find('=');
        if (equals == std::string::npos || equals == 0) {
            throw mclip::Error(mclip::ErrorCode::invalid_argument, "--input-option '" + option + "' is not KEY=VALUE");
        }
        options.input_options.emplace_back(option.substr(0, equals), option.substr(equals + 1));
    }
    options.folder_fps = args.folder_fps;
    options.retries = args.retries;
    options.retry_delay_seconds = args.retry_delay;
    options.every_frame = args.every_frame;
    options.top_k = args.top_k;
    options.smoothing = args.smooth;
    options.threshold = args.threshold;
    options.hysteresis = args.hysteresis;
    options.video_out = args.out;
    options.show = args.show;
    options.dump_frames = args.dump_frames;
    options.max_frames = args.max_frames;
    mclip::LiveSession live = mclip::LiveSession::open(options);
    mclip::log_message(mclip::LogLevel::info, live.description());

    mclip::tools::ModelOptions model_options = args.model;
    if (args.every_frame && model_options.threads == 0 && !std::getenv("OMP_NUM_THREADS")) {
        // Decoding and frame conversion run flat out beside the model here; given every core, the
        // model's threads and the decoder's preempt each other (S0 bf16, 720p H.264, two cores of
        // the AMX Xeon: 54 frames/s with two model threads, 78 with one).
        model_options.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
    }
    const mclip::Model model = mclip::tools::load_model(model_options);
    const mclip::LabelSet label_set = model.labels(labels, mclip::tools::label_set_options(templates, args.cache));
    mclip::tools::log_label_set(label_set);

    EventLog events(args.jsonl);
    install_stop_handlers();
    std::exception_ptr error;
    try {
        live.run(model, label_set, stop_requested, [&](const mclip::LiveResult& r) { events.write(result_json(r)); });
    } catch (...) {
        error = std::current_exception();
    }
    // The events of the frames processed so far are complete lines: keep them whatever happened.
    events.commit();
    const nlohmann::json summary = stats_json(live.stats(), args.source);
    print_summary(summary, args.out);
    if (!args.stats.empty()) mclip::write_file_atomically(args.stats, summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (error) std::rethrow_exception(error);
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<LiveArgs>();
    auto* cmd = app.add_subcommand("live", "Live recognition on a camera, video file, stream or image folder");
    mclip::tools::add_model_options(*cmd, args->model)->required();
    cmd->add_option("--source", args->source,
                    "Camera (/dev/video0), video file, stream URL (rtsp://, http://, ...) or folder of images")->required();
    mclip::tools::add_label_options(*cmd, args->labels);
    cmd->add_option("--template", args->templates, "Prompt template with {} for the label (repeatable; default \"a photo of a {}.\")")
        ->allow_extra_args(false);
    mclip::tools::add_cache_options(*cmd, args->cache);
    cmd->add_option("-k,--top-k", args->top_k, "Labels reported per frame")->capture_default_str()->check(CLI::Range(1, 100000));
    cmd->add_option("--threshold", args->threshold, "Below this smoothed probability the label is \"unknown\"")->capture_default_str();
    cmd->add_option("--smooth", args->smooth, "Weight of the newest frame in the moving average of scores (1: no smoothing)")->capture_default_str();
    cmd->add_option("--hysteresis", args->hysteresis, "How far a shown label must fall below the threshold, or be beaten, before it changes")
        ->capture_default_str();
    cmd->add_flag("--every-frame", args->every_frame, "Process every frame of a file or folder (offline analysis; nothing is dropped)");
    cmd->add_option("--jsonl", args->jsonl, "Write one JSON line per processed frame to FILE (- for standard output)");
    cmd->add_option("--out", args->out, "Write the annotated video to FILE (.mp4, .mkv, ...)");
    cmd->add_flag("--show", args->show, "Show the annotated video in a window (skipped where there is no display)");
    cmd->add_option("--stats", args->stats, "Write the end-of-run statistics as JSON to FILE");
    cmd->add_option("--dump-frames", args->dump_frames, "Debug: save each processed frame's RGB pixels as DIR/frame_NNNNNN.png");
    cmd->add_option("--max-frames", args->max_frames, "Stop after reading this many frames (0: no limit)")->check(CLI::NonNegativeNumber);
    cmd->add_option("--fps", args->folder_fps, "Frame rate of a folder of images")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--input-format", args->input_format, "Force an FFmpeg input format or device (v4l2, mjpeg, ...)");
    cmd->add_option("--input-option", args->input_options, "FFmpeg input option KEY=VALUE, e.g. video_size=1280x720 (repeatable)");
    cmd->add_option("--retries", args->retries, "Reconnection attempts before a dropped stream ends the run")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--retry-delay", args->retry_delay, "Seconds before the first reconnection; doubled on each further one")
        ->capture_default_str()->check(CLI::PositiveNumber);
    cmd->callback([args, &exit_code] { exit_code = run_live(*args); });
}

MCLIP_REGISTER_COMMAND("live", setup);

}  // namespace
