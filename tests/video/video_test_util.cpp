#include "video_test_util.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include "support/fixtures.h"

namespace mclip::testing {

AvFramePtr make_av_frame(AVPixelFormat format, int width, int height) {
    AvFramePtr frame = allocate_av_frame();
    frame->format = format;
    frame->width = width;
    frame->height = height;
    if (av_frame_get_buffer(frame.get(), 0) < 0) throw std::runtime_error("av_frame_get_buffer failed");
    return frame;
}

int plane_rows(const AVFrame& frame, int plane) {
    const auto* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
    const bool chroma = plane == 1 || plane == 2;
    return chroma ? -((-frame.height) >> desc->log2_chroma_h) : frame.height;
}

int plane_row_bytes(const AVFrame& frame, int plane) {
    int linesizes[4] = {};
    av_image_fill_linesizes(linesizes, static_cast<AVPixelFormat>(frame.format), frame.width);
    return linesizes[plane];
}

void fill_random(AVFrame& frame, std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    const auto* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
    if (desc->flags & AV_PIX_FMT_FLAG_PAL) {
        for (int i = 0; i < 1024; ++i) frame.data[1][i] = static_cast<uint8_t>(byte(rng));
    }
    for (int p = 0; p < 4 && frame.data[p]; ++p) {
        if (p == 1 && (desc->flags & AV_PIX_FMT_FLAG_PAL)) continue;
        for (int y = 0; y < plane_rows(frame, p); ++y) {
            uint8_t* row = frame.data[p] + static_cast<ptrdiff_t>(y) * frame.linesize[p];
            for (int x = 0; x < plane_row_bytes(frame, p); ++x) row[x] = static_cast<uint8_t>(byte(rng));
        }
    }
}

std::string find_tool(const std::string& name) {
    const auto result = run_command("command -v " + name);
    std::string path = result.out;
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    return result.exit_code == 0 ? path : "";
}

void run_ffmpeg(const std::string& arguments) {
    const auto result = run_command("ffmpeg -nostdin -hide_banner -loglevel error -y " + arguments);
    if (result.exit_code != 0) throw std::runtime_error("ffmpeg " + arguments + " failed: " + result.err);
}

std::vector<uint8_t> decode_raw(const std::filesystem::path& video, const std::string& pixel_format, const std::string& extra_options) {
    const auto dir = make_temp_dir("mclip-decode");
    const auto raw = dir / "frames.raw";
    run_ffmpeg("-i " + shell_quote(video.string()) + " " + extra_options + " -f rawvideo -pix_fmt " + pixel_format + " " +
               shell_quote(raw.string()));
    std::ifstream in(raw, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove_all(dir);
    return bytes;
}

int64_t count_frames(const std::filesystem::path& video) {
    const auto result = run_command("ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 " +
                                    shell_quote(video.string()));
    if (result.exit_code != 0) throw std::runtime_error("ffprobe failed on " + video.string() + ": " + result.err);
    return std::stoll(result.out);
}

}  // namespace mclip::testing
