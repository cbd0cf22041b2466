// Helpers shared by the video tests: frames filled with known or random pixels, and the ffmpeg
// tool for making test clips and decoding outputs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
}

#include "video/frame.h"

namespace mclip::testing {

// An allocated frame of the given format and size (contents undefined).
AvFramePtr make_av_frame(AVPixelFormat format, int width, int height);
// Bytes per row actually used, and rows, of plane `plane` of `frame`.
int plane_rows(const AVFrame& frame, int plane);
int plane_row_bytes(const AVFrame& frame, int plane);
// Every used byte of every plane set from `rng`.
void fill_random(AVFrame& frame, std::mt19937& rng);

// The ffmpeg (or ffprobe) executable, empty when not installed.
std::string find_tool(const std::string& name);
// Runs ffmpeg with `arguments` (quiet); throws with its stderr on failure.
void run_ffmpeg(const std::string& arguments);
// The frames of `video` decoded by ffmpeg as raw pixels of `pixel_format` (rgb24, gray).
std::vector<uint8_t> decode_raw(const std::filesystem::path& video, const std::string& pixel_format,
                                const std::string& extra_options = "");
// Frame count by decoding every frame (ffprobe -count_frames).
int64_t count_frames(const std::filesystem::path& video);

}  // namespace mclip::testing
