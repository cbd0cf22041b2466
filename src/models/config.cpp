#include "models/config.h"

#include "common/error.h"

namespace mclip {

const char* to_string(ImageEncoderKind kind) { return kind == ImageEncoderKind::mci ? "mci" : "vit"; }
const char* to_string(TextEncoderKind kind) { return kind == TextEncoderKind::mct ? "mct" : "base"; }

namespace {

ModelConfig mobileclip_mci(std::string name, std::string display, std::array<int, 4> depths, std::array<int, 4> widths,
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
