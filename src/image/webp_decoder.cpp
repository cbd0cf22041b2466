// WebP through libwebp with its default decoder options (fancy upsampling, no dithering), which is
// how Pillow's WebP plugin decodes. Alpha is dropped without compositing, as convert("RGB") does.
// An animated WebP yields its first frame on the animation canvas (uncovered pixels black), the
// frame PIL's Image.open presents.
#include <memory>

#include <webp/decode.h>
#include <webp/demux.h>

#include "common/error.h"
#include "image/decoders.h"

namespace mclip::image_detail {

namespace {

[[noreturn]] void fail(const std::string& name, VP8StatusCode status) {
    switch (status) {
        case VP8_STATUS_NOT_ENOUGH_DATA:
            throw Error(ErrorCode::invalid_input, name + ": truncated WebP (the data ends before the image is complete)");
        case VP8_STATUS_UNSUPPORTED_FEATURE:
            throw Error(ErrorCode::invalid_input, name + ": unsupported WebP feature");
        case VP8_STATUS_OUT_OF_MEMORY: throw Error(ErrorCode::invalid_input, name + ": out of memory decoding WebP");
        default: throw Error(ErrorCode::invalid_input, name + ": corrupt WebP (bitstream error)");
    }
}

std::vector<uint8_t> read_exif(const WebPData& data) {
    std::unique_ptr<WebPDemuxer, decltype(&WebPDemuxDelete)> demux(WebPDemux(&data), WebPDemuxDelete);
    std::vector<uint8_t> exif;
    if (!demux || !(WebPDemuxGetI(demux.get(), WEBP_FF_FORMAT_FLAGS) & EXIF_FLAG)) return exif;
    WebPChunkIterator chunk;
    if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk)) {
        exif.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
        WebPDemuxReleaseChunkIterator(&chunk);
    }
    return exif;
}

void decode_first_frame(const WebPData& data, Image& image, const std::string& name) {
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) throw Error(ErrorCode::internal, name + ": libwebp version mismatch");
    options.color_mode = MODE_RGBA;
    std::unique_ptr<WebPAnimDecoder, decltype(&WebPAnimDecoderDelete)> decoder(WebPAnimDecoderNew(&data, &options),
                                                                               WebPAnimDecoderDelete);
    uint8_t* rgba = nullptr;
    int timestamp = 0;
    WebPAnimInfo info;
    if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info) || !WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp)) {
        throw Error(ErrorCode::invalid_input, name + ": corrupt or truncated animated WebP");
    }
    // The canvas is copied below as the size the header announced: both must agree.
    if (info.canvas_width != static_cast<uint32_t>(image.width) || info.canvas_height != static_cast<uint32_t>(image.height)) {
        throw Error(ErrorCode::invalid_input, name + ": corrupt animated WebP (the canvas size disagrees with the header)");
    }
    const size_t pixels = static_cast<size_t>(image.width) * image.height;
    for (size_t i = 0; i < pixels; ++i) {
        image.rgb[3 * i + 0] = rgba[4 * i + 0];
        image.rgb[3 * i + 1] = rgba[4 * i + 1];
        image.rgb[3 * i + 2] = rgba[4 * i + 2];
    }
}

}  // namespace

DecodedImage decode_webp(std::span<const uint8_t> bytes, const std::string& name, const DecodeOptions& options) {
    WebPBitstreamFeatures features;
    const VP8StatusCode header = WebPGetFeatures(bytes.data(), bytes.size(), &features);
    if (header != VP8_STATUS_OK) fail(name, header);
    check_pixel_limit(static_cast<uint64_t>(features.width), static_cast<uint64_t>(features.height), name, options);

    DecodedImage result;
    Image& image = result.image;
    image.width = features.width;
    image.height = features.height;
    image.rgb.resize(static_cast<size_t>(features.width) * features.height * 3);
    const WebPData data{bytes.data(), bytes.size()};
    if (features.has_animation) {
        decode_first_frame(data, image, name);
    } else {
        WebPDecoderConfig config;
        if (!WebPInitDecoderConfig(&config)) throw Error(ErrorCode::internal, name + ": libwebp version mismatch");
        config.output.colorspace = MODE_RGB;
        config.output.is_external_memory = 1;
        config.output.u.RGBA.rgba = image.rgb.data();
        config.output.u.RGBA.stride = features.width * 3;
        config.output.u.RGBA.size = image.rgb.size();
        const VP8StatusCode status = WebPDecode(bytes.data(), bytes.size(), &config);
        WebPFreeDecBuffer(&config.output);
        if (status != VP8_STATUS_OK) fail(name, status);
    }
    if (options.apply_exif_orientation) result.exif = read_exif(data);
    return result;
}

}  // namespace mclip::image_detail
