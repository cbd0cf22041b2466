// A model's architecture and preprocessing (ModelConfig), and the table of the supported models'
// configurations. A loaded model's config comes from its file (model_file.h); the table gives the
// converter its defaults (and files of format 1 the keys they lack).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "mclip/preprocess.h"
#include "mclip/tokenizer.h"

namespace mclip {

enum class ImageEncoderKind { mci, vit };
enum class TextEncoderKind { base, mct };

const char* to_string(ImageEncoderKind kind);
const char* to_string(TextEncoderKind kind);

// MCi (FastViT-style) image encoders of MobileCLIP S0/S1/S2.
struct MciConfig {
    std::array<int, 4> depths{};  // blocks per stage; stages 1–3 RepMixer, stage 4 attention
    std::array<int, 4> widths{};  // channels per stage
    int mlp_ratio = 3;            // ConvFFN hidden = mlp_ratio · width
    int head_dim = 32;            // attention head width in stage 4
    int mixer_kernel = 3;         // RepMixer depthwise kernel
    int ffn_kernel = 7;           // ConvFFN depthwise kernel
    int downsample_kernel = 7;    // PatchEmbed large kernel (small kernel 3 is folded into it)
    int cpe_kernel = 7;           // RepCPE kernel
    // Whether the PatchEmbed into stage i+1 (i = 0, 1, 2) has a squeeze-excite block.
    std::array<bool, 3> downsample_se{false, true, true};
    int se_divisor = 4;           // PatchEmbed SE width = width / se_divisor
    int conv_exp_se_divisor = 16; // conv_exp SE width = 2·width[3] / 16
};

// ViT-B/16 image encoder of MobileCLIP-B (conv stem 4×4/2×2/2×2).
struct VitConfig {
    int width = 768;
    int layers = 12;
    int heads = 12;
    int ffn = 3072;
    int stem_width = 192;
    int patch = 16;
};

// The input side is ModelConfig::preprocess.size (image_size()).
struct ImageEncoderConfig {
    ImageEncoderKind kind = ImageEncoderKind::mci;
    MciConfig mci;
    VitConfig vit;
};

struct TextEncoderConfig {
    TextEncoderKind kind = TextEncoderKind::base;
    int layers = 12;         // transformer layers (mct: the 4 between its two RepMixer blocks)
    int width = 512;
    int heads = 8;
    int ffn = 2048;
    int context = Tokenizer::kContextLength;
    int vocab = 49408;
    bool causal = false;     // causal attention mask (only MobileCLIP-B)
    int mixer_kernel = 11;   // mct RepMixer kernel (1 × 11)
};

struct ModelConfig {
    std::string name;          // mobileclip_s0 (the --arch value)
    std::string display_name;  // MobileCLIP-S0
    ImageEncoderConfig image;
    TextEncoderConfig text;
    int embed_dim = 512;
    // The reference preprocessing (resize, center crop, normalization); its size is the side of
    // the square image the image encoder takes.
    PreprocessParams preprocess;

    int image_size() const { return preprocess.size; }
};

// The configurations mclip convert knows (--arch), as the reference code builds them.
const std::vector<ModelConfig>& model_configs();
// Throws Error(invalid_argument) listing the known names when `name` is unknown.
const ModelConfig& model_config(std::string_view name);

}  // namespace mclip
