#include "models/fold.h"

#include "common/error.h"
#include "models/encoder.h"

namespace mclip {

TensorMap fold_checkpoint(const ModelConfig& config, const WeightSource& checkpoint) {
    TensorMap out;
    if (config.image.kind == ImageEncoderKind::mci) {
        fold_mci_image(config, checkpoint, out);
    } else {
        fold_vit_image(config, checkpoint, out);
    }
    fold_text(config, checkpoint, out);
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

}  // namespace mclip
