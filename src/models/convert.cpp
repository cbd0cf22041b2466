#include "models/convert.h"

#include "common/error.h"
#include "common/log.h"
#include "mclip/image.h"
#include "mclip/preprocess.h"
#include "io/checkpoint.h"
#include "io/sha256.h"
#include "models/calibration.h"
#include "models/fold.h"
#include "models/weights.h"
#include "mclip/tokenizer.h"

namespace mclip {

namespace {

// Ranges measured on the weights as they will be stored (bf16, q8 …), the ones int8 layers use.
Calibration calibrate(const ModelConfig& config, const TensorMap& folded, StorageType storage, const Tokenizer* tokenizer,
                      const ConvertOptions& options) {
    TensorMap stored;
    for (const auto& [name, tensor] : folded) {
        stored[name] = storage_for_tensor(tensor, storage) == GgmlType::f32 ? tensor : stored_values(tensor, storage);
    }
    const WeightSource weights = WeightSource::from_map(stored, config.name);
    const int size = config.preprocess.size;
    const int64_t count = static_cast<int64_t>(options.calibration_images.size());
    Tensor images = Tensor::zeros_f32({count, 3, size, size});
    Preprocessor preprocessor(config.preprocess);
    for (int64_t i = 0; i < count; ++i) {
        preprocessor.run(decode_image_file(options.calibration_images[i], {}), images.f32() + i * 3 * size * size);
    }
    std::vector<int32_t> tokens;
    if (tokenizer) {
        tokens = tokenizer->context_batch(options.calibration_prompts, config.text.context);
    } else if (!options.calibration_prompts.empty()) {
        log_warning("no vocabulary given: the text encoder is not calibrated and runs bf16 in int8 mode");
    }
    const int64_t prompts = static_cast<int64_t>(tokens.size()) / config.text.context;
    return measure_input_ranges(config, weights, images, tokens,
                                std::to_string(count) + " images, " + std::to_string(prompts) + " prompts");
}

}  // namespace

ConvertSummary convert_checkpoint(const std::filesystem::path& input, const std::filesystem::path& output,
                                  const ConvertOptions& options) {
    const ModelConfig& config = model_config(options.arch);
    ConvertSummary summary;
    const TensorMap checkpoint = read_checkpoint(input, options.checkpoint_key);
    summary.input_tensors = checkpoint.size();
    summary.source_sha256 = sha256_file_hex(input);

    const WeightSource source = WeightSource::from_map(checkpoint, input.string() + " (as " + config.name + ")");
    ModelFileContents contents;
    contents.config = &config;
    contents.tensors = fold_checkpoint(config, source);
    contents.storage = parse_storage_type(options.weights);
    contents.source_sha256 = summary.source_sha256;
    std::optional<Tokenizer> tokenizer;
    if (!options.vocabulary.empty()) tokenizer = Tokenizer::from_file(options.vocabulary);
    contents.tokenizer = tokenizer ? &*tokenizer : nullptr;
    summary.output_tensors = contents.tensors.size() - 1;  // logit_scale is stored as metadata
    log_info("folded " + std::to_string(summary.input_tensors) + " training-form tensors into " +
             std::to_string(summary.output_tensors) + " inference-form tensors");
    std::optional<Calibration> calibration;
    if (!options.calibration_images.empty()) {
        calibration = calibrate(config, contents.tensors, contents.storage, tokenizer ? &*tokenizer : nullptr, options);
        contents.calibration = &*calibration;
    }
    write_model_file(output, contents);
    summary.output_bytes = std::filesystem::file_size(output);
    return summary;
}

}  // namespace mclip
