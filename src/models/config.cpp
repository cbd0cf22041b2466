#include "models/config.h"

#include <array>

#include "common/error.h"

namespace mclip {

const char* to_string(ImageEncoderKind kind) { return kind == ImageEncoderKind::mci ? "mci" : "vit"; }
const char* to_string(TextEncoderKind kind) { return kind == TextEncoderKind::mct ? "mct" : "base"; }
const char* to_string(MlpActivation activation) { return activation == MlpActivation::quick_gelu ? "quick_gelu" : "gelu"; }
const char* to_string(VitStem stem) { return stem == VitStem::patch ? "patch" : "conv3"; }
const char* to_string(MciAttentionNorm norm) { return norm == MciAttentionNorm::layer_norm ? "layer_norm" : "batch_norm"; }

MlpActivation mlp_activation_from_name(std::string_view name) {
    if (name == "gelu") return MlpActivation::gelu;
    if (name == "quick_gelu") return MlpActivation::quick_gelu;
    throw Error(ErrorCode::invalid_argument, "unknown activation '" + std::string(name) + "' (expected gelu or quick_gelu)");
}

VitStem vit_stem_from_name(std::string_view name) {
    if (name == "conv3") return VitStem::conv3;
    if (name == "patch") return VitStem::patch;
    throw Error(ErrorCode::invalid_argument, "unknown ViT stem '" + std::string(name) + "' (expected conv3 or patch)");
}

MciAttentionNorm mci_attention_norm_from_name(std::string_view name) {
    if (name == "batch_norm") return MciAttentionNorm::batch_norm;
    if (name == "layer_norm") return MciAttentionNorm::layer_norm;
    throw Error(ErrorCode::invalid_argument, "unknown attention norm '" + std::string(name) + "' (expected batch_norm or layer_norm)");
}

int MciConfig::cpe_index(int s) const {
    int index = 0;
    for (int i = 0; i < s; ++i) index += (attention_stage(i) ? 1 : 0) + 1 + (i + 1 < stages() ? 1 : 0);
    return index;
}

int MciConfig::stage_index(int s) const { return cpe_index(s) + (attention_stage(s) ? 1 : 0); }

int MciConfig::downsample_index(int s) const { return stage_index(s) + 1; }

namespace {

ModelConfig mobileclip_mci(std::string name, std::string display, std::vector<int> depths, std::vector<int> widths,
                           TextEncoderConfig text) {
    ModelConfig c;
    c.name = std::move(name);
    c.display_name = std::move(display);
    c.image.kind = ImageEncoderKind::mci;
    c.image.mci.depths = depths;
    c.image.mci.widths = widths;
    c.text = text;
    c.preprocess.size = 256;
    return c;
}

TextEncoderConfig text_base(bool causal) {
    TextEncoderConfig t;
    t.kind = TextEncoderKind::base;
    t.layers = 12;
    t.causal = causal;
    return t;
}

TextEncoderConfig text_mct() {
    TextEncoderConfig t;
    t.kind = TextEncoderKind::mct;
    t.layers = 4;
    return t;
}

// OpenAI's CLIP normalization (open_clip's OPENAI_DATASET_MEAN / _STD).
constexpr std::array<float, 3> kOpenAiMean{0.48145466f, 0.4578275f, 0.40821073f};
constexpr std::array<float, 3> kOpenAiStd{0.26862954f, 0.26130258f, 0.27577711f};

// open_clip's text transformer: 12 layers, heads of 64, MLP 4× the width.
TextEncoderConfig text_open_clip(int width, bool causal, MlpActivation activation) {
    TextEncoderConfig t = text_base(causal);
    t.width = width;
    t.heads = width / 64;
    t.ffn = 4 * width;
    t.activation = activation;
    return t;
}

// OpenAI CLIP ViT-<patch> (open_clip's "openai" tag: QuickGELU, causal text, bicubic, OpenAI mean/std).
ModelConfig openai_vit(std::string name, std::string display, int patch, int width, int layers, int embed_dim, int text_width) {
    ModelConfig c;
    c.name = std::move(name);
    c.display_name = std::move(display);
    c.layout = CheckpointLayout::open_clip;
    c.image.kind = ImageEncoderKind::vit;
    VitConfig& v = c.image.vit;
    v.width = width;
    v.layers = layers;
    v.heads = width / 64;
    v.ffn = 4 * width;
    v.patch = patch;
    v.stem = VitStem::patch;
    v.class_position = true;
    v.pre_norm = true;
    v.activation = MlpActivation::quick_gelu;
    c.text = text_open_clip(text_width, true, MlpActivation::quick_gelu);
    c.embed_dim = embed_dim;
    c.preprocess.size = 224;
    c.preprocess.interpolation = Interpolation::bicubic;
    c.preprocess.mean = kOpenAiMean;
    c.preprocess.std = kOpenAiStd;
    return c;
}

// MobileCLIP2-S0/S2 and MobileCLIP-S2 as open_clip ships them: timm's FastViT MCi with a Linear
// head, the standard bidirectional text transformer; no normalization.
ModelConfig open_clip_mci(std::string name, std::string display, std::vector<int> depths, std::vector<int> widths) {
    ModelConfig c = mobileclip_mci(std::move(name), std::move(display), std::move(depths), std::move(widths),
                                   text_open_clip(512, false, MlpActivation::gelu));
    c.layout = CheckpointLayout::open_clip;
    c.image.mci.head_bias = true;
    return c;
}

// MobileCLIP2-S3/S4: timm's fastvit_mci3 / mci4, five stages with attention (LayerNorm) in the
// last two, no squeeze-excite in the PatchEmbeds, no 1×1 branch in the stem, MLP ratio 4;
// 768-wide bidirectional text, OpenAI mean/std.
ModelConfig open_clip_mci_large(std::string name, std::string display, std::vector<int> depths, std::vector<int> widths) {
    ModelConfig c = open_clip_mci(std::move(name), std::move(display), std::move(depths), std::move(widths));
    MciConfig& m = c.image.mci;
    m.attention_stages = 2;
    m.attention_norm = MciAttentionNorm::layer_norm;
    m.mlp_ratio = 4;
    m.downsample_se.assign(m.stages() - 1, false);
    m.stem_scale_branch = false;
    c.text = text_open_clip(768, false, MlpActivation::gelu);
    c.embed_dim = 768;
    c.preprocess.mean = kOpenAiMean;
    c.preprocess.std = kOpenAiStd;
    return c;
}

// MobileCLIP2-B: timm's vit_base_mci_224 (MobileCLIP-B's conv-stem ViT with LayerNorm eps 1e-6
// and a Linear head), causal text, no normalization.
ModelConfig mobileclip2_b() {
    ModelConfig c;
    c.name = "mobileclip2_b";
    c.display_name = "MobileCLIP2-B";
    c.layout = CheckpointLayout::open_clip;
    c.image.kind = ImageEncoderKind::vit;
    c.image.vit.norm_eps = 1e-6f;
    c.image.vit.stem_padding = 0;
    c.image.vit.head_bias = true;
    c.text = text_open_clip(512, true, MlpActivation::gelu);
    c.preprocess.size = 224;
    return c;
}

// MobileCLIP2-L-14: timm's vit_large_patch14_clip_224 (CLIP's ViT-L/14 with exact GELU and a
// Linear head), bidirectional text, bicubic, OpenAI mean/std.
ModelConfig mobileclip2_l_14() {
    ModelConfig c = openai_vit("mobileclip2_l_14", "MobileCLIP2-L-14", 14, 1024, 24, 768, 768);
    c.image.vit.activation = MlpActivation::gelu;
    c.image.vit.head_bias = true;
    c.text = text_open_clip(768, false, MlpActivation::gelu);
    return c;
}

std::vector<ModelConfig> build_table() {
    std::vector<ModelConfig> table;
    table.push_back(mobileclip_mci("mobileclip_s0", "MobileCLIP-S0", {2, 6, 10, 2}, {64, 128, 256, 512}, text_mct()));
    table.push_back(mobileclip_mci("mobileclip_s1", "MobileCLIP-S1", {4, 12, 20, 4}, {64, 128, 256, 512}, text_base(false)));
    table.push_back(mobileclip_mci("mobileclip_s2", "MobileCLIP-S2", {4, 12, 24, 4}, {80, 160, 320, 640}, text_base(false)));
    ModelConfig b;
    b.name = "mobileclip_b";
    b.display_name = "MobileCLIP-B";
    b.image.kind = ImageEncoderKind::vit;
    b.text = text_base(true);
    b.preprocess.size = 224;
    table.push_back(b);
    table.push_back(openai_vit("openai_vit_b_32", "OpenAI CLIP ViT-B/32", 32, 768, 12, 512, 512));
    table.push_back(openai_vit("openai_vit_b_16", "OpenAI CLIP ViT-B/16", 16, 768, 12, 512, 512));
    table.push_back(openai_vit("openai_vit_l_14", "OpenAI CLIP ViT-L/14", 14, 1024, 24, 768, 768));
    table.push_back(open_clip_mci("mobileclip2_s0", "MobileCLIP2-S0", {2, 6, 10, 2}, {64, 128, 256, 512}));
    table.push_back(open_clip_mci("mobileclip2_s2", "MobileCLIP2-S2", {4, 12, 24, 4}, {80, 160, 320, 640}));
    table.push_back(mobileclip2_b());
    table.push_back(open_clip_mci_large("mobileclip2_s3", "MobileCLIP2-S3", {2, 12, 24, 4, 2}, {96, 192, 384, 768, 1536}));
    table.push_back(open_clip_mci_large("mobileclip2_s4", "MobileCLIP2-S4", {2, 12, 24, 4, 4}, {128, 256, 512, 1024, 2048}));
    table.push_back(mobileclip2_l_14());
    table.push_back(open_clip_mci("mobileclip_s2_openclip", "MobileCLIP-S2 (open_clip)", {4, 12, 24, 4}, {80, 160, 320, 640}));
    return table;
}

}  // namespace

const std::vector<ModelConfig>& model_configs() {
    static const std::vector<ModelConfig> table = build_table();
    return table;
}

const ModelConfig& model_config(std::string_view name) {
    std::string known;
    for (const auto& c : model_configs()) {
        if (c.name == name) return c;
        known += (known.empty() ? "" : ", ") + c.name;
    }
    throw Error(ErrorCode::invalid_argument, "unknown architecture '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace mclip
