// `mclip convert`: a MobileCLIP checkpoint (training form) → one folded GGUF model file.
#include <cstdio>

#include "command.h"
#include "mclip/coreml.h"
#include "image_inputs.h"
#include "mclip/labels.h"
#include "mclip/model_file.h"

namespace {

struct ConvertArgs {
    std::string arch;
    std::vector<std::string> inputs;  // one checkpoint, or Core ML packages
    std::string output;
    std::string dtype = "f32";
    std::string key;
    std::string vocab;
    std::vector<std::string> calibrate;
};

// Prompts for text calibration: every preset label in the default templates, the kind of text
// zero-shot classification encodes.
std::vector<std::string> calibration_prompts() {
    std::vector<std::string> prompts;
    for (const std::string& preset : mclip::label_preset_names()) {
        const std::vector<std::string> expanded = mclip::expand_prompts(mclip::label_preset(preset), mclip::default_templates());
        prompts.insert(prompts.end(), expanded.begin(), expanded.end());
    }
    return prompts;
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<ConvertArgs>();
    auto* cmd = app.add_subcommand("convert", "Convert a MobileCLIP checkpoint into an mclip model file (GGUF)");
    std::string architectures;
    for (const auto& name : mclip::architecture_names()) architectures += (architectures.empty() ? "" : ", ") + name;
    cmd->add_option("--arch", args->arch, "Architecture: " + architectures);
    cmd->add_option("--in", args->inputs,
                    "Checkpoint (ml-mobileclip or open_clip key layout, .safetensors or PyTorch .pt/.bin), or Core ML packages: "
                    "--in IMAGE.mlpackage --in TEXT.mlpackage "
                    "(--arch then comes from the programs)")
        ->required()
        ->check(CLI::ExistingPath);
    cmd->add_option("--out", args->output, "Model file to write")->required();
    cmd->add_option("--dtype", args->dtype, "Weight storage")->capture_default_str()->check(CLI::IsMember(mclip::weight_storage_names()));
    cmd->add_option("--key", args->key, "Key of the state dict inside a PyTorch checkpoint (default: detect)");
    cmd->add_option("--vocab", args->vocab, "BPE vocabulary to embed (bpe_simple_vocab_16e6.txt.gz or vocab.json)");
    cmd->add_option("--calibrate", args->calibrate,
                    "Images or folders of typical inputs: measures the activation ranges --precision int8 needs "
                    "(with --vocab, also on prompts made of the label presets)");
    cmd->callback([args, &exit_code] {
        if (mclip::is_coreml_path(args->inputs.front())) {
            mclip::CoreMLImportOptions options;
            options.weights = args->dtype;
            options.vocabulary = args->vocab;
            const std::vector<std::filesystem::path> packages(args->inputs.begin(), args->inputs.end());
            const auto summary = mclip::import_coreml(packages, args->output, options);
            if (!args->arch.empty() && args->arch != summary.architecture) {
                std::fprintf(stderr, "note: the packages are %s, not --arch %s\n", summary.architecture.c_str(), args->arch.c_str());
            }
            std::fprintf(stderr, "wrote %s: %s from Core ML, %zu tensors, %.1f MiB (%s)\n", args->output.c_str(), summary.architecture.c_str(),
                         summary.tensors, summary.output_bytes / 1048576.0, args->dtype.c_str());
            exit_code = 0;
            return;
        }
        if (args->inputs.size() != 1) throw mclip::Error(mclip::ErrorCode::invalid_argument, "--in: give one checkpoint (several --in are for Core ML packages)");
        if (args->arch.empty()) throw mclip::Error(mclip::ErrorCode::invalid_argument, "--arch is required to convert a checkpoint");
        mclip::ConvertOptions options;
        options.arch = args->arch;
        options.weights = args->dtype;
        options.checkpoint_key = args->key;
        options.vocabulary = args->vocab;
        if (!args->calibrate.empty()) {
            options.calibration_images = mclip::tools::collect_image_paths(args->calibrate);
            if (options.calibration_images.empty()) {
                throw mclip::Error(mclip::ErrorCode::invalid_argument, "--calibrate: no images found in the given paths");
            }
            options.calibration_prompts = calibration_prompts();
        }
        const auto summary = mclip::convert_checkpoint(args->inputs.front(), args->output, options);
        std::fprintf(stderr, "wrote %s: %zu tensors, %.1f MiB (%s), from %zu checkpoint tensors\n", args->output.c_str(),
                     summary.output_tensors, summary.output_bytes / 1048576.0, args->dtype.c_str(), summary.input_tensors);
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("convert", setup);

}  // namespace
