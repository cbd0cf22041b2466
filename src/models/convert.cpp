#include "models/convert.h"

#include "common/error.h"
#include "common/log.h"
#include "io/checkpoint.h"
#include "io/sha256.h"
#include "models/fold.h"
#include "models/weights.h"
#include "tokenizer/tokenizer.h"

namespace mclip {

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
    contents.storage = options.storage;
    contents.source_sha256 = summary.source_sha256;
    std::optional<Tokenizer> tokenizer;
    if (!options.vocabulary.empty()) tokenizer = Tokenizer::from_file(options.vocabulary);
    contents.tokenizer = tokenizer ? &*tokenizer : nullptr;
    summary.output_tensors = contents.tensors.size() - 1;  // logit_scale is stored as metadata
    log_info("folded " + std::to_string(summary.input_tensors) + " training-form tensors into " +
             std::to_string(summary.output_tensors) + " inference-form tensors");
    write_model_file(output, contents);
    summary.output_bytes = std::filesystem::file_size(output);
    return summary;
}

}  // namespace mclip
