#include "models/fold.h"

#include <regex>

#include "common/error.h"
#include "models/encoder.h"

namespace mclip {
namespace {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) text.replace(at, from.size(), to);
}

// timm's FastViT MCi (visual.trunk.*, as open_clip stores MobileCLIP2 S0/S2/S3/S4 and MobileCLIP-S2)
// has the modules of ml-mobileclip's MCi under other names; this gives each tensor its
// ml-mobileclip name (image_encoder.model.*) so one fold serves both. timm's stages.S splits into
// network entries (MciConfig::stage_index and friends); its head is a Linear ([E, C], with bias)
// that becomes head.proj [C, E] and head.bias.
TensorMap timm_fastvit_as_mobileclip(const MciConfig& mci, const WeightSource& checkpoint) {
    static const std::regex stage_part(R"(^stages\.(\d+)\.(downsample|pos_emb\.pos_enc|blocks)\.)");
    const std::string trunk = "visual.trunk.";
    TensorMap out;
    for (const std::string& name : checkpoint.names()) {
        Tensor tensor = checkpoint.get_any_shape(name);
        if (!name.starts_with(trunk)) {
            out[name] = tensor;
            continue;
        }
        std::string n = name.substr(trunk.size());
        if (n == "head.fc.weight" && tensor.rank() == 2) {
            const int64_t rows = tensor.dim(0), cols = tensor.dim(1);
            Tensor transposed = Tensor::zeros_f32({cols, rows});
            const Tensor values = tensor.to_f32();
            for (int64_t r = 0; r < rows; ++r) {
                for (int64_t c = 0; c < cols; ++c) transposed.f32()[c * rows + r] = values.f32()[r * cols + c];
            }
            out["image_encoder.model.head.proj"] = transposed;
            continue;
        }
        if (n == "head.fc.bias") {
            out["image_encoder.model.head.bias"] = tensor;
            continue;
        }
        std::smatch m;
        if (n.starts_with("stem.")) {
            n = "patch_embed." + n.substr(5);
        } else if (std::regex_search(n, m, stage_part)) {
            // Stage numbers beyond the architecture's keep a name no fold reads: the check for
            // unused tensors then reports them.
            const int s = std::stoi(m[1].str().substr(0, 3));
            const std::string part = m[2];
            if (s < mci.stages()) {
                if (part == "blocks") {
                    n = "network." + std::to_string(mci.stage_index(s)) + "." + m.suffix().str();
                } else if (part == "downsample" && s > 0) {
                    n = "network." + std::to_string(mci.downsample_index(s - 1)) + "." + m.suffix().str();
                } else if (part != "downsample" && mci.attention_stage(s)) {
                    n = "network." + std::to_string(mci.cpe_index(s)) + ".pe." + m.suffix().str();
                }
            }
        } else if (n.starts_with("final_conv.")) {
            n = "conv_exp." + n.substr(11);
            replace_all(n, ".se.fc1.", ".se.reduce.");
            replace_all(n, ".se.fc2.", ".se.expand.");
        }
        replace_all(n, ".conv_kxk.", ".rbr_conv.");
        replace_all(n, ".conv_scale.", ".rbr_scale.");
        replace_all(n, ".identity.", ".rbr_skip.");
        replace_all(n, ".large_conv.", ".lkb_origin.");
        replace_all(n, ".mlp.", ".convffn.");
        for (const char* scale : {"layer_scale", "layer_scale_1", "layer_scale_2"}) {
            const std::string suffix = std::string(".") + scale + ".gamma";
            if (n.ends_with(suffix)) n = n.substr(0, n.size() - 6);
        }
        out["image_encoder.model." + n] = tensor;
    }
    return out;
}

// logit_scale, and the check that every tensor was used.
TensorMap finish_fold(const ModelConfig& config, const WeightSource& checkpoint, TensorMap out);

}  // namespace

TensorMap fold_checkpoint(const ModelConfig& config, const WeightSource& original) {
    if (config.layout == CheckpointLayout::open_clip && config.image.kind == ImageEncoderKind::mci) {
        const TensorMap renamed = timm_fastvit_as_mobileclip(config.image.mci, original);
        const WeightSource source = WeightSource::from_map(renamed, original.description());
        TensorMap out;
        fold_mci_image(config, source, out);
        fold_open_clip_text(config, source, out);
        return finish_fold(config, source, std::move(out));
    }
    TensorMap out;
    const WeightSource& checkpoint = original;
    if (config.layout == CheckpointLayout::open_clip) {
        fold_open_clip_vit_image(config, checkpoint, out);
        fold_open_clip_text(config, checkpoint, out);
    } else {
        if (config.image.kind == ImageEncoderKind::mci) {
            fold_mci_image(config, checkpoint, out);
        } else {
            fold_vit_image(config, checkpoint, out);
        }
        fold_text(config, checkpoint, out);
    }
    return finish_fold(config, checkpoint, std::move(out));
}

namespace {

TensorMap finish_fold(const ModelConfig& config, const WeightSource& checkpoint, TensorMap out) {
    out["logit_scale"] = checkpoint.get("logit_scale", {}).clone();

    const auto unexpected = checkpoint.unused([](const std::string& name) {
        return name.ends_with("num_batches_tracked");
    });
    if (!unexpected.empty()) {
        std::string list;
        for (size_t i = 0; i < unexpected.size() && i < 5; ++i) list += (i ? ", " : "") + unexpected[i];
        if (unexpected.size() > 5) list += ", ... (" + std::to_string(unexpected.size()) + " in all)";
        throw Error(ErrorCode::invalid_input, checkpoint.description() + ": tensors that " + config.name +
                                                  " does not have: " + list + " (is the architecture right?)");
    }
    return out;
}

}  // namespace

}  // namespace mclip
