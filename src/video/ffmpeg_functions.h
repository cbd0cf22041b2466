// FFmpeg's functions as mclip calls them: through pointers resolved when live video is first used,
// not linked (common/shared_library.h says why).
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace mclip {

// Every FFmpeg function mclip calls, with the library (libNAME.so.MAJOR) that defines it.
#define MCLIP_FFMPEG_FUNCTIONS(X)            \
    X(avcodec, av_packet_alloc)              \
    X(avcodec, av_packet_free)               \
    X(avcodec, av_packet_rescale_ts)         \
    X(avcodec, av_packet_unref)              \
    X(avcodec, avcodec_alloc_context3)       \
    X(avcodec, avcodec_find_encoder)         \
    X(avcodec, avcodec_find_encoder_by_name) \
    X(avcodec, avcodec_free_context)         \
    X(avcodec, avcodec_open2)                \
    X(avcodec, avcodec_parameters_from_context) \
    X(avcodec, avcodec_parameters_to_context) \
    X(avcodec, avcodec_receive_frame)        \
    X(avcodec, avcodec_receive_packet)       \
    X(avcodec, avcodec_send_frame)           \
    X(avcodec, avcodec_send_packet)          \
    X(avdevice, avdevice_register_all)       \
    X(avformat, av_find_best_stream)         \
    X(avformat, av_find_input_format)        \
    X(avformat, av_guess_format)             \
    X(avformat, av_guess_frame_rate)         \
    X(avformat, av_interleaved_write_frame)  \
    X(avformat, av_read_frame)               \
    X(avformat, av_write_trailer)            \
    X(avformat, avformat_alloc_context)      \
    X(avformat, avformat_alloc_output_context2) \
    X(avformat, avformat_close_input)        \
    X(avformat, avformat_find_stream_info)   \
    X(avformat, avformat_free_context)       \
    X(avformat, avformat_network_init)       \
    X(avformat, avformat_new_stream)         \
    X(avformat, avformat_open_input)         \
    X(avformat, avformat_query_codec)        \
    X(avformat, avformat_write_header)       \
    X(avformat, avio_closep)                 \
    X(avformat, avio_open)                   \
    X(avutil, av_d2q)                        \
    X(avutil, av_dict_free)                  \
    X(avutil, av_dict_get)                   \
    X(avutil, av_dict_set)                   \
    X(avutil, av_frame_alloc)                \
    X(avutil, av_frame_copy)                 \
    X(avutil, av_frame_free)                 \
    X(avutil, av_frame_get_buffer)           \
    X(avutil, av_frame_make_writable)        \
    X(avutil, av_get_pix_fmt_name)           \
    X(avutil, av_log_format_line2)           \
    X(avutil, av_log_set_callback)           \
    X(avutil, av_opt_set)                    \
    X(avutil, av_pix_fmt_desc_get)           \
    X(avutil, av_strerror)                   \
    X(swscale, sws_freeContext)              \
    X(swscale, sws_getCachedContext)         \
    X(swscale, sws_getCoefficients)          \
    X(swscale, sws_isSupportedInput)         \
    X(swscale, sws_scale)                    \
    X(swscale, sws_setColorspaceDetails)

struct FfmpegFunctions {
#define MCLIP_FFMPEG_POINTER(library, name) decltype(&::name) name;
    MCLIP_FFMPEG_FUNCTIONS(MCLIP_FFMPEG_POINTER)
#undef MCLIP_FFMPEG_POINTER
};

// The functions, FFmpeg's libraries opened on the first call (thread-safe). Error(unsupported)
// naming the library when one cannot be opened or lacks a function; later calls try again.
const FfmpegFunctions& ffmpeg();

}  // namespace mclip
