#include "video/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <random>
#include <system_error>

#include "common/error.h"
#include "common/log.h"
#include "video/ffmpeg_functions.h"
#include "video/frame.h"

namespace mclip {

namespace {

std::filesystem::path temporary_path_beside(const std::filesystem::path& target) {
    std::random_device random;
    // The extension stays last: the muxer is chosen from the target's name, not this one's.
    return target.parent_path() / ("." + target.stem().string() + ".partial-" + std::to_string(random() % 1000000) +
                                   target.extension().string());
}

}  // namespace

struct VideoWriter::State {
    std::filesystem::path target;
    std::filesystem::path temporary;
    AVFormatContext* muxer = nullptr;
    AVCodecContext* encoder = nullptr;
    AVStream* stream = nullptr;
    AVPacket* packet = nullptr;
    std::string codec;
    int width = 0;
    int height = 0;
    double frame_rate = 0;
    int64_t last_pts = -1;
    int64_t frames = 0;
    bool header_written = false;
    bool finished = false;

    [[noreturn]] void fail(const std::string& what, int code) const {
        throw Error(ErrorCode::io, target.string() + ": " + what + ": " + av_error_text(code));
    }

    // Sends a frame (or nullptr to flush) and writes every packet the encoder has ready.
    void encode(AVFrame* frame) {
        int ret = ffmpeg().avcodec_send_frame(encoder, frame);
        if (ret < 0) fail("cannot encode a frame", ret);
        while ((ret = ffmpeg().avcodec_receive_packet(encoder, packet)) >= 0) {
            ffmpeg().av_packet_rescale_ts(packet, encoder->time_base, stream->time_base);
            packet->stream_index = stream->index;
            ret = ffmpeg().av_interleaved_write_frame(muxer, packet);
            if (ret < 0) fail("cannot write a packet", ret);
        }
        if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) fail("cannot encode a frame", ret);
    }

    void release() {
        ffmpeg().avcodec_free_context(&encoder);
        if (muxer && muxer->pb) ffmpeg().avio_closep(&muxer->pb);
        ffmpeg().avformat_free_context(muxer);
        muxer = nullptr;
        ffmpeg().av_packet_free(&packet);
    }
};

void VideoWriter::check_target(const std::filesystem::path& path) {
    initialize_ffmpeg();
    if (!ffmpeg().av_guess_format(nullptr, path.string().c_str(), nullptr)) {
        throw Error(ErrorCode::invalid_argument, path.string() + ": no video container for this file extension (try .mp4)");
    }
    const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    std::error_code error;
    if (!std::filesystem::is_directory(folder, error)) throw Error(ErrorCode::io, path.string() + ": no such folder " + folder.string());
}

VideoWriter::VideoWriter(const std::filesystem::path& path, int width, int height, double frame_rate)
    : state_(std::make_unique<State>()) {
    initialize_ffmpeg();
    State& s = *state_;
    s.target = path;
    s.temporary = temporary_path_beside(path);
    s.width = width;
    s.height = height;
    s.frame_rate = frame_rate > 0 ? frame_rate : 30.0;
    if (width < 2 || height < 2 || width % 2 || height % 2) {
        throw Error(ErrorCode::internal, "video writer needs even dimensions, got " + std::to_string(width) + "x" + std::to_string(height));
    }
    try {
        check_target(path);
        const AVOutputFormat* container = ffmpeg().av_guess_format(nullptr, path.string().c_str(), nullptr);
        int ret = ffmpeg().avformat_alloc_output_context2(&s.muxer, container, nullptr, path.string().c_str());
        if (ret < 0) s.fail("cannot set up the container", ret);

        const AVCodec* codec = ffmpeg().avcodec_find_encoder_by_name("libx264");
        if (!codec || ffmpeg().avformat_query_codec(container, AV_CODEC_ID_H264, FF_COMPLIANCE_NORMAL) == 0) {
            codec = ffmpeg().avcodec_find_encoder(AV_CODEC_ID_MPEG4);
        }
        if (!codec) throw Error(ErrorCode::unsupported, "this FFmpeg build has neither a libx264 nor an MPEG-4 encoder");
        s.codec = codec->name;
        s.encoder = ffmpeg().avcodec_alloc_context3(codec);
        s.packet = ffmpeg().av_packet_alloc();
        if (!s.encoder || !s.packet) throw Error(ErrorCode::internal, "out of memory setting up the video encoder");
        s.encoder->width = width;
        s.encoder->height = height;
        s.encoder->pix_fmt = AV_PIX_FMT_YUV420P;
        s.encoder->sample_aspect_ratio = AVRational{1, 1};
        // MPEG-4 part 2 allows time base denominators up to 65535.
        const AVRational rate = ffmpeg().av_d2q(s.frame_rate, 65535);
        s.encoder->time_base = av_inv_q(rate);
        s.encoder->framerate = rate;
        s.encoder->gop_size = 2 * static_cast<int>(std::ceil(s.frame_rate));
        if (s.codec == "libx264") {
            // Fast enough to run beside the model on a small CPU; CRF 23 is x264's default quality.
            ffmpeg().av_opt_set(s.encoder->priv_data, "preset", "veryfast", 0);
            ffmpeg().av_opt_set(s.encoder->priv_data, "crf", "23", 0);
        } else {
            s.encoder->flags |= AV_CODEC_FLAG_QSCALE;
            s.encoder->global_quality = FF_QP2LAMBDA * 4;
        }
        if (container->flags & AVFMT_GLOBALHEADER) s.encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        ret = ffmpeg().avcodec_open2(s.encoder, codec, nullptr);
        if (ret < 0) s.fail("cannot open the " + s.codec + " encoder", ret);

        s.stream = ffmpeg().avformat_new_stream(s.muxer, nullptr);
        if (!s.stream) throw Error(ErrorCode::internal, "out of memory setting up the video stream");
        s.stream->time_base = s.encoder->time_base;
        s.stream->avg_frame_rate = rate;
        ret = ffmpeg().avcodec_parameters_from_context(s.stream->codecpar, s.encoder);
        if (ret < 0) s.fail("cannot set up the video stream", ret);

        ret = ffmpeg().avio_open(&s.muxer->pb, s.temporary.string().c_str(), AVIO_FLAG_WRITE);
        if (ret < 0) throw Error(ErrorCode::io, path.string() + ": cannot create " + s.temporary.string() + ": " + av_error_text(ret));
        ret = ffmpeg().avformat_write_header(s.muxer, nullptr);
        if (ret < 0) s.fail("cannot write the container header", ret);
        s.header_written = true;
    } catch (...) {
        s.release();
        std::error_code ignored;
        std::filesystem::remove(s.temporary, ignored);
        throw;
    }
}

VideoWriter::~VideoWriter() {
    if (!state_) return;
    state_->release();
    if (!state_->finished) {
        std::error_code ignored;
        std::filesystem::remove(state_->temporary, ignored);
    }
}

void VideoWriter::write(AVFrame& frame, double seconds) {
    State& s = *state_;
    if (frame.width != s.width || frame.height != s.height || frame.format != AV_PIX_FMT_YUV420P) {
        throw Error(ErrorCode::internal, "video writer got a frame of another size or format");
    }
    // Timestamps in frame periods; a repeated or backward time still gets its own slot.
    const int64_t pts = std::max<int64_t>(std::llround(seconds * s.frame_rate), s.last_pts + 1);
    s.last_pts = pts;
    frame.pts = pts;
    s.encode(&frame);
    ++s.frames;
}

void VideoWriter::finish() {
    State& s = *state_;
    if (s.finished) return;
    s.encode(nullptr);
    const int ret = ffmpeg().av_write_trailer(s.muxer);
    if (ret < 0) s.fail("cannot write the container trailer", ret);
    ffmpeg().avio_closep(&s.muxer->pb);
    // On disk before the rename, as AtomicFile does, so a crash cannot leave a truncated video.
    const int fd = ::open(s.temporary.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) {
        if (fd >= 0) ::close(fd);
        throw_system_error(s.temporary.string(), "cannot flush the video to disk");
    }
    ::close(fd);
    std::error_code error;
    std::filesystem::rename(s.temporary, s.target, error);
    if (error) throw Error(ErrorCode::io, s.target.string() + ": cannot move the finished video into place: " + error.message());
    s.finished = true;
}

const std::string& VideoWriter::codec_name() const { return state_->codec; }
int64_t VideoWriter::frames_written() const { return state_->frames; }

}  // namespace mclip
