// The one place where the dimensions of every supported model live. Everything else (folding,
// graphs, conversion, the model file's metadata) reads them from here.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

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

struct ImageEncoderConfig {
    ImageEncoderKind kind = ImageEncoderKind::mci;
    int input_size = 256;
    MciConfig mci;
    VitConfig vit;
};

struct TextEncoderConfig {
    TextEncoderKind kind = TextEncoderKind::base;
    int layers = 12;         // transformer layers (mct: the 4 between its two RepMixer blocks)
    int width = 512;
    int heads = 8;
    int ffn = 2048;
    int context = 77;
    int vocab = 49408;
    bool causal = false;     // causal attention mask (only MobileCLIP-B)
    int mixer_kernel = 11;   // mct RepMixer kernel (1 × 11)
};

// The reference preprocessing: resize the shorter side to `size` (bilinear, antialiased),
// center-crop `size`, scale to [0, 1], then (x − mean) / std per channel.
struct PreprocessConfig {
    int size = 256;
    std::string resize = "bilinear";
    std::string crop = "center";
    std::array<float, 3> mean{0.0f, 0.0f, 0.0f};
    std::array<float, 3> std{1.0f, 1.0f, 1.0f};
};

struct ModelConfig {
    std::string name;          // mobileclip_s0 (the --arch value)
    std::string display_name;  // MobileCLIP-S0
    ImageEncoderConfig image;
    TextEncoderConfig text;
    int embed_dim = 512;
    PreprocessConfig preprocess;
};

// The image preprocessing parameters of a model (src/image/preprocess.h).
struct PreprocessParams;
PreprocessParams preprocess_params(const PreprocessConfig& config);

const std::vector<ModelConfig>& model_configs();
// Throws Error(invalid_argument) listing the known names when `name` is unknown.
const ModelConfig& model_config(std::string_view name);

}  // namespace mclip
