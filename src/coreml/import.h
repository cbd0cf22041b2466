// Core ML → mclip: a MobileCLIP encoder package's ML Program mapped onto mclip's inference-form
// tensors by its structure (the sequence and shapes of its parameterized ops), not by names.
#pragma once

#include <array>
#include <filesystem>
#include <string>

#include "coreml/package.h"
#include "models/config.h"
#include "tensor/tensor.h"

namespace mclip::coreml {

struct ImportedEncoder {
    bool image = false;             // image encoder (else text)
    ModelConfig config;             // the architecture the program matched, preprocessing from the package
    TensorMap tensors;              // inference form ("img." / "txt." names)
    float scale = 1.0f;             // image input: pixel (0..255) × scale + bias[c]
    std::array<float, 3> bias{};
};

// Maps an image encoder package (input an image, one output) onto the first MCi architecture
// whose layer sequence it matches. Throws Error(invalid_input) saying what did not match.
ImportedEncoder import_image_encoder(const Package& package);
// Maps a text encoder package (input int32 [1, context], one output) onto the first architecture
// whose text layer sequence it matches.
ImportedEncoder import_text_encoder(const Package& package);

}  // namespace mclip::coreml
