#include "video/source.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "mclip/image.h"
#include "video/ffmpeg_functions.h"

namespace mclip {

namespace {

using Clock = std::chrono::steady_clock;

// Sleeps in short steps so that an interrupt is noticed; false when interrupted.
bool sleep_unless_interrupted(double seconds, const std::atomic<bool>* interrupt) {
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < until) {
        if (interrupt && interrupt->load()) return false;
        std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
    }
    return !(interrupt && interrupt->load());
}

std::string format_rate(double fps) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.4g fps", fps);
    return text;
}

class FfmpegSource final : public VideoSource {
public:
    FfmpegSource(std::string spec, SourceKind kind, SourceOptions options)
        : spec_(std::move(spec)), kind_(kind), options_(std::move(options)) {
        initialize_ffmpeg();
        packet_ = ffmpeg().av_packet_alloc();
        if (!packet_) throw Error(ErrorCode::internal, "out of memory opening " + spec_);
        OpenFailure failure;
        if (!open_input(failure)) {
            ffmpeg().av_packet_free(&packet_);  // no destructor runs for a constructor that throws
            throw Error(failure.code, spec_ + ": " + failure.message);
        }
    }

    ~FfmpegSource() override {
        close_input();
        ffmpeg().av_packet_free(&packet_);
    }

    std::optional<VideoFrame> read() override {
        AvFramePtr picture = allocate_av_frame();
        while (true) {
            if (interrupted()) return std::nullopt;
            int ret = ffmpeg().avcodec_receive_frame(decoder_, picture.get());
            if (ret == 0) return make_frame(std::move(picture));
            if (ret == AVERROR_EOF) {
                if (kind_ == SourceKind::stream && !finite_) {
                    if (!reconnect("the stream ended")) return std::nullopt;
                    continue;
                }
                return std::nullopt;
            }
            if (ret != AVERROR(EAGAIN)) {
                if (!recover("cannot decode a frame: " + av_error_text(ret))) return std::nullopt;
                continue;
            }
            arm_deadline();
            ret = ffmpeg().av_read_frame(format_, packet_);
            deadline_.reset();
            if (ret == AVERROR_EOF) {
                ffmpeg().avcodec_send_packet(decoder_, nullptr);  // drain the frames the decoder still holds
                continue;
            }
            if (ret < 0) {
                if (interrupted()) return std::nullopt;
                const std::string why = ret == AVERROR_EXIT ? "no data for " + std::to_string(static_cast<int>(options_.stream_timeout_seconds)) + " s"
                                                            : av_error_text(ret);
                if (!recover("read failed: " + why)) return std::nullopt;
                continue;
            }
            if (packet_->stream_index != stream_index_) {
                ffmpeg().av_packet_unref(packet_);
                continue;
            }
            ret = ffmpeg().avcodec_send_packet(decoder_, packet_);
            ffmpeg().av_packet_unref(packet_);
            if (ret == AVERROR_INVALIDDATA) {
                // One damaged packet costs a frame or a few, not the run.
                if (corrupt_packets_++ == 0) log_warning(spec_ + ": skipping corrupt video data");
                continue;
            }
            if (ret < 0 && ret != AVERROR(EAGAIN)) {
                if (!recover("cannot decode: " + av_error_text(ret))) return std::nullopt;
            }
        }
    }

    SourceKind kind() const override { return kind_; }
    double frame_rate() const override { return frame_rate_; }
    std::string description() const override { return description_; }
    void set_interrupt(const std::atomic<bool>* flag) override { interrupt_ = flag; }

private:
    static int interrupt_callback(void* opaque) {
        const auto* self = static_cast<const FfmpegSource*>(opaque);
        if (self->interrupted()) return 1;
        return self->deadline_ && Clock::now() > *self->deadline_ ? 1 : 0;
    }

    bool interrupted() const { return interrupt_ && interrupt_->load(); }

    // Live sources must keep delivering; a file may take as long as its disk needs.
    void arm_deadline() {
        if (kind_ == SourceKind::file) return;
        deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.stream_timeout_seconds));
    }

    // After a failure: a stream reconnects; a file or a device ends the run with an error.
    bool recover(const std::string& what) {
        if (kind_ == SourceKind::stream) return reconnect(what);
        if (kind_ == SourceKind::device) throw Error(ErrorCode::io, spec_ + ": camera stopped delivering frames: " + what);
        throw Error(ErrorCode::invalid_input, spec_ + ": " + what);
    }

    bool reconnect(std::string reason) {
        close_input();
        for (int attempt = 1; attempt <= options_.stream_retries; ++attempt) {
            const double delay = std::min(options_.retry_delay_seconds * std::pow(2.0, attempt - 1), options_.retry_max_delay_seconds);
            char wait[32];
            std::snprintf(wait, sizeof(wait), "%.1f", delay);
            log_warning(spec_ + ": " + reason + "; reconnecting in " + wait + " s (attempt " + std::to_string(attempt) + " of " +
                        std::to_string(options_.stream_retries) + ")");
            if (!sleep_unless_interrupted(delay, interrupt_)) return false;
            OpenFailure failure;
            if (open_input(failure)) {
                log_warning(spec_ + ": reconnected");
                return true;
            }
            if (interrupted()) return false;
            reason = failure.message;
        }
        throw Error(ErrorCode::network, spec_ + ": stream lost (" + reason + "); gave up after " +
                                            std::to_string(options_.stream_retries) + " reconnection attempts");
    }

    struct OpenFailure {
        ErrorCode code = ErrorCode::io;
        std::string message;
    };

    // Opens, probes and sets up the decoder; on failure fills `failure` and leaves nothing open.
    bool open_input(OpenFailure& failure) {
        const auto fail = [&](ErrorCode code, std::string message) {
            close_input();
            failure = {kind_ == SourceKind::stream ? ErrorCode::network : code, std::move(message)};
            return false;
        };
        format_ = ffmpeg().avformat_alloc_context();
        if (!format_) return fail(ErrorCode::internal, "out of memory");
        format_->interrupt_callback.callback = &FfmpegSource::interrupt_callback;
        format_->interrupt_callback.opaque = this;
        const AVInputFormat* input_format = nullptr;
        std::string format_name = options_.input_format;
        if (format_name.empty() && kind_ == SourceKind::device) format_name = "video4linux2";
        if (!format_name.empty()) {
            input_format = ffmpeg().av_find_input_format(format_name.c_str());
            if (!input_format) return fail(ErrorCode::invalid_argument, "unknown input format '" + format_name + "'");
        }
        AVDictionary* dictionary = nullptr;
        for (const auto& [key, value] : options_.input_options) ffmpeg().av_dict_set(&dictionary, key.c_str(), value.c_str(), 0);
        arm_deadline();
        int ret = ffmpeg().avformat_open_input(&format_, spec_.c_str(), input_format, &dictionary);  // frees format_ on failure
        const AVDictionaryEntry* unused = ffmpeg().av_dict_get(dictionary, "", nullptr, AV_DICT_IGNORE_SUFFIX);
        if (ret >= 0 && unused) log_warning(spec_ + ": input option '" + unused->key + "' was not used");
        ffmpeg().av_dict_free(&dictionary);
        if (ret < 0) {
            deadline_.reset();
            format_ = nullptr;
            return fail(ErrorCode::io, "cannot open: " + (ret == AVERROR_EXIT && !interrupted() ? std::string("timed out") : av_error_text(ret)));
        }
        ret = ffmpeg().avformat_find_stream_info(format_, nullptr);
        deadline_.reset();
        if (ret < 0) return fail(ErrorCode::invalid_input, "cannot read stream information: " + av_error_text(ret));
        const AVCodec* codec = nullptr;
        stream_index_ = ffmpeg().av_find_best_stream(format_, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
        if (stream_index_ < 0) {
            return fail(ErrorCode::invalid_input, stream_index_ == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video codec" : "no video stream");
        }
        AVStream* stream = format_->streams[stream_index_];
        decoder_ = ffmpeg().avcodec_alloc_context3(codec);
        if (!decoder_ || ffmpeg().avcodec_parameters_to_context(decoder_, stream->codecpar) < 0) {
            return fail(ErrorCode::internal, "cannot set up the " + std::string(codec->name) + " decoder");
        }
        decoder_->pkt_timebase = stream->time_base;
        decoder_->thread_count = 0;
        if (kind_ != SourceKind::file) {
            // Frame threading holds frames back; slices keep a live picture current.
            decoder_->thread_type = FF_THREAD_SLICE;
            decoder_->flags |= AV_CODEC_FLAG_LOW_DELAY;
        }
        ret = ffmpeg().avcodec_open2(decoder_, codec, nullptr);
        if (ret < 0) return fail(ErrorCode::invalid_input, "cannot open the " + std::string(codec->name) + " decoder: " + av_error_text(ret));
        time_base_ = stream->time_base;
        start_pts_ = stream->start_time != AV_NOPTS_VALUE ? stream->start_time : 0;
        const AVRational rate = ffmpeg().av_guess_frame_rate(format_, stream, nullptr);
        frame_rate_ = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;
        finite_ = format_->duration != AV_NOPTS_VALUE && format_->duration > 0;
        const char* pixel_format = decoder_->pix_fmt == AV_PIX_FMT_NONE ? "?" : ffmpeg().av_get_pix_fmt_name(decoder_->pix_fmt);
        description_ = spec_ + ": " + to_string(kind_) + ", " + codec->name + " " + std::to_string(decoder_->width) + "x" +
                       std::to_string(decoder_->height) + " " + (pixel_format ? pixel_format : "?") +
                       (frame_rate_ > 0 ? ", " + format_rate(frame_rate_) : "");
        return true;
    }

    void close_input() {
        ffmpeg().avcodec_free_context(&decoder_);
        ffmpeg().avformat_close_input(&format_);
    }

    VideoFrame make_frame(AvFramePtr picture) {
        VideoFrame frame;
        frame.index = next_index_++;
        if (kind_ == SourceKind::file) {
            const int64_t pts = picture->best_effort_timestamp;
            frame.pts_seconds = pts != AV_NOPTS_VALUE ? static_cast<double>(pts - start_pts_) * av_q2d(time_base_)
                                : frame_rate_ > 0 ? static_cast<double>(frame.index) / frame_rate_
                                                  : 0.0;
        } else {
            // Live timestamps restart on reconnection and differ between devices: wall time is steadier.
            const auto now = Clock::now();
            if (!live_start_) live_start_ = now;
            frame.pts_seconds = std::chrono::duration<double>(now - *live_start_).count();
        }
        frame.picture = std::move(picture);
        return frame;
    }

    std::string spec_;
    SourceKind kind_;
    SourceOptions options_;
    AVFormatContext* format_ = nullptr;
    AVCodecContext* decoder_ = nullptr;
    AVPacket* packet_ = nullptr;
    int stream_index_ = -1;
    AVRational time_base_{1, 1};
    int64_t start_pts_ = 0;
    double frame_rate_ = 0;
    bool finite_ = false;
    int64_t corrupt_packets_ = 0;
    int64_t next_index_ = 0;
    std::optional<Clock::time_point> live_start_;
    std::optional<Clock::time_point> deadline_;
    const std::atomic<bool>* interrupt_ = nullptr;
    std::string description_;
};

bool is_image_file(const std::filesystem::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

class ImageFolderSource final : public VideoSource {
public:
    ImageFolderSource(const std::string& spec, const SourceOptions& options) : spec_(spec), fps_(options.folder_fps) {
        if (!(fps_ > 0)) throw Error(ErrorCode::invalid_argument, "folder frame rate must be positive");
        std::error_code error;
        for (std::filesystem::directory_iterator it(spec, error), end; !error && it != end; it.increment(error)) {
            if (it->is_regular_file() && is_image_file(it->path())) files_.push_back(it->path());
        }
        if (error) throw Error(ErrorCode::io, spec + ": cannot list the folder: " + error.message());
        if (files_.empty()) throw Error(ErrorCode::invalid_input, spec + ": no JPEG, PNG or WebP images in this folder");
        std::sort(files_.begin(), files_.end());
    }

    std::optional<VideoFrame> read() override {
        while (next_file_ < files_.size()) {
            if (interrupt_ && interrupt_->load()) return std::nullopt;
            const auto& path = files_[next_file_++];
            Image image;
            try {
                image = decode_image_file(path);
            } catch (const Error& e) {
                log_warning(std::string(e.what()) + " (skipped)");
                continue;
            }
            AvFramePtr picture = allocate_av_frame();
            picture->format = AV_PIX_FMT_RGB24;
            picture->width = image.width;
            picture->height = image.height;
            picture->color_range = AVCOL_RANGE_JPEG;
            if (ffmpeg().av_frame_get_buffer(picture.get(), 0) < 0) throw Error(ErrorCode::internal, "out of memory reading " + path.string());
            const size_t row = static_cast<size_t>(image.width) * 3;
            for (int y = 0; y < image.height; ++y) {
                std::memcpy(picture->data[0] + static_cast<ptrdiff_t>(y) * picture->linesize[0], image.rgb.data() + y * row, row);
            }
            VideoFrame frame;
            frame.index = next_index_++;
            frame.pts_seconds = static_cast<double>(frame.index) / fps_;
            frame.picture = std::move(picture);
            return frame;
        }
        return std::nullopt;
    }

    SourceKind kind() const override { return SourceKind::image_folder; }
    double frame_rate() const override { return fps_; }
    std::string description() const override {
        return spec_ + ": folder of " + std::to_string(files_.size()) + " images, shown at " + format_rate(fps_);
    }
    void set_interrupt(const std::atomic<bool>* flag) override { interrupt_ = flag; }

private:
    std::string spec_;
    double fps_;
    std::vector<std::filesystem::path> files_;
    size_t next_file_ = 0;
    int64_t next_index_ = 0;
    const std::atomic<bool>* interrupt_ = nullptr;
};

}  // namespace

const char* to_string(SourceKind kind) {
    switch (kind) {
        case SourceKind::file: return "file";
        case SourceKind::device: return "camera";
        case SourceKind::stream: return "stream";
        case SourceKind::image_folder: return "image folder";
    }
    return "?";
}

SourceKind source_kind(const std::string& spec) {
    static const char* const network_schemes[] = {"rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://",
                                                  "udp://",  "tcp://",   "srt://",  "rtp://",   "hls+http://"};
    for (const char* scheme : network_schemes) {
        if (spec.rfind(scheme, 0) == 0) return SourceKind::stream;
    }
    if (spec.rfind("/dev/", 0) == 0) return SourceKind::device;
    std::error_code ignored;
    if (std::filesystem::is_directory(spec, ignored)) return SourceKind::image_folder;
    return SourceKind::file;
}

std::unique_ptr<VideoSource> VideoSource::open(const std::string& spec, const SourceOptions& options) {
    if (spec.empty()) throw Error(ErrorCode::invalid_argument, "no video source given");
    const SourceKind kind = source_kind(spec);
    std::error_code ignored;
    if (kind == SourceKind::device && !std::filesystem::exists(spec, ignored)) {
        throw Error(ErrorCode::io, spec + ": no such camera device (is it plugged in? `ls /dev/video*` lists the cameras)");
    }
    if (kind == SourceKind::file && !std::filesystem::exists(spec, ignored)) {
        throw Error(ErrorCode::io, spec + ": no such file");
    }
    if (kind == SourceKind::image_folder) return std::make_unique<ImageFolderSource>(spec, options);
    return std::make_unique<FfmpegSource>(spec, kind, options);
}

}  // namespace mclip
