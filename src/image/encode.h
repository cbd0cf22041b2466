// Encoding 8-bit RGB images to JPEG and PNG in memory (libjpeg-turbo, libpng), for saving crops
// and frames and for building test and benchmark inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "image/image.h"

namespace mclip {

struct JpegEncodeOptions {
    int quality = 90;               // 1..100
    bool subsample_chroma = true;   // 4:2:0 like most cameras; false keeps 4:4:4
};

// Throws Error(invalid_argument) for an image whose buffer does not match its size.
std::vector<uint8_t> encode_jpeg(const Image& image, const JpegEncodeOptions& options = {});
std::vector<uint8_t> encode_png(const Image& image);

}  // namespace mclip
