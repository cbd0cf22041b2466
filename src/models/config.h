// A model's architecture and preprocessing (ModelConfig), and the table of the supported models'
// configurations. A loaded model's config comes from its file (model_file.h); the table gives the
// converter its defaults (and files of format 1 the keys they lack).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mclip/preprocess.h"
#include "mclip/tokenizer.h"

namespace mclip {

enum class ImageEncoderKind { mci, vit };
enum class TextEncoderKind { base, mct };
// The MLP activation of a transformer: exact GELU, or OpenAI CLIP's x·sigmoid(1.702·x).
enum class MlpActivation { gelu, quick_gelu };
// How a ViT cuts the image into tokens: MobileCLIP-B's three-conv stem (4×4/s4, 2×2/s2, 2×2/s2,
// BatchNorm folded, GELU between), or one patch×patch convolution with stride patch (CLIP).
enum class VitStem { conv3, patch };
// The key names of the training-form checkpoint the converter reads: Apple's ml-mobileclip
// (image_encoder.*, text_encoder.*) or open_clip's state_dict (visual.*, transformer.* / text.*).
enum class CheckpointLayout { ml_mobileclip, open_clip };
// How the attention stages of an MCi encoder normalize their input: BatchNorm (folded into qkv
// by the converter) in MCi0–MCi2, LayerNorm over the channels of each position in MCi3/MCi4.
enum class MciAttentionNorm { batch_norm, layer_norm };

const char* to_string(ImageEncoderKind kind);
const char* to_string(TextEncoderKind kind);
const char* to_string(MlpActivation activation);
const char* to_string(VitStem stem);
const char* to_string(MciAttentionNorm norm);
// Throw Error(invalid_argument) for an unknown name.
MlpActivation mlp_activation_from_name(std::string_view name);
VitStem vit_stem_from_name(std::string_view name);
MciAttentionNorm mci_attention_norm_from_name(std::string_view name);

// MCi (FastViT-style) image encoders: MobileCLIP S0/S1/S2, MobileCLIP2 S0/S2 (four stages, the
// last one attention) and MobileCLIP2 S3/S4 (five stages, the last two attention).
struct MciConfig {
    std::vector<int> depths;      // blocks per stage: RepMixer stages, then the attention stages
    std::vector<int> widths;      // channels per stage
    int attention_stages = 1;     // how many of the last stages use attention (each after a RepCPE)
    MciAttentionNorm attention_norm = MciAttentionNorm::batch_norm;
    float norm_eps = 1e-5f;       // of the attention stages' LayerNorm
    int mlp_ratio = 3;            // ConvFFN hidden = mlp_ratio · width
    int head_dim = 32;            // attention head width
    int mixer_kernel = 3;         // RepMixer depthwise kernel
    int ffn_kernel = 7;           // ConvFFN depthwise kernel
    int downsample_kernel = 7;    // PatchEmbed large kernel (small kernel 3 is folded into it)
    int cpe_kernel = 7;           // RepCPE kernel
    // Whether the PatchEmbed after stage s (into stage s+1) has a squeeze-excite block.
    std::vector<bool> downsample_se{false, true, true};
    int se_divisor = 4;           // PatchEmbed SE width = width / se_divisor
    int conv_exp_se_divisor = 16; // conv_exp SE width = 2·width[last] / 16
    bool head_bias = false;       // the projection after the pool has a bias (timm's head)
    // Converter only (the model file holds the folded stem): the stem's two 3×3 MobileOne
    // blocks have a 1×1 scale branch (not in timm's MCi3/MCi4 stem).
    bool stem_scale_branch = true;

    int stages() const { return static_cast<int>(depths.size()); }
    int last_width() const { return widths.back(); }
    bool attention_stage(int s) const { return s >= stages() - attention_stages; }
    // Positions in ml-mobileclip's `network` list, which the inference-form names keep: each
    // stage's blocks, preceded by its RepCPE (attention stages) and followed by the PatchEmbed
    // into the next stage (all but the last). Four stages: 0, 1, 2, 3, 4, 5, RepCPE 6, 7.
    int stage_index(int s) const;
    int cpe_index(int s) const;
    int downsample_index(int s) const;
};

// ViT image encoders: MobileCLIP-B's (the defaults) and CLIP's (patch stem, class position,
// ln_pre, quick_gelu for OpenAI's).
struct VitConfig {
    int width = 768;
    int layers = 12;
    int heads = 12;
    int ffn = 3072;
    int stem_width = 192;   // conv3 stem only
    int stem_padding = 1;   // conv3 stem: padding of its first (4×4) conv
    int patch = 16;
    VitStem stem = VitStem::conv3;
    bool class_position = false;  // the positional table has a row for the class token (first)
    bool pre_norm = false;        // LayerNorm after the positional embedding (CLIP's ln_pre)
    MlpActivation activation = MlpActivation::gelu;
    float norm_eps = 1e-5f;       // of every LayerNorm in the tower
    bool head_bias = false;       // the projection of the class token has a bias
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
    bool causal = false;     // causal attention mask (MobileCLIP-B, MobileCLIP2-B, OpenAI CLIP)
    MlpActivation activation = MlpActivation::gelu;
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
    // Read by the converter only; the model file holds inference-form names.
    CheckpointLayout layout = CheckpointLayout::ml_mobileclip;

    int image_size() const { return preprocess.size; }
};

// The configurations mclip convert knows (--arch), as the reference code builds them.
const std::vector<ModelConfig>& model_configs();
// Throws Error(invalid_argument) listing the known names when `name` is unknown.
const ModelConfig& model_config(std::string_view name);

}  // namespace mclip
