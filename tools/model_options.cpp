#include "model_options.h"

#include <vector>

#include "models/model_store.h"

namespace mclip::tools {
namespace {

// The precisions --precision names besides "auto"; each must be one kernels::parse_precision knows.
const std::vector<std::string> kPrecisionNames = {"f32", "bf16", "int8"};

}  // namespace

std::string model_file_or_name_help() { return "Model file (GGUF), or a model name to download once: " + registered_model_names(); }

CLI::Option* add_model_options(CLI::App& command, ModelOptions& options, const std::string& model_help) {
    CLI::Option* model = command.add_option("--model", options.model, model_help);
    command.add_option("--backend", options.backend, "Kernels: auto, reference or onednn")->capture_default_str();
    std::string names;
    for (const auto& name : kPrecisionNames) names += name + ", ";
    std::vector<std::string> accepted = {"auto"};
    accepted.insert(accepted.end(), kPrecisionNames.begin(), kPrecisionNames.end());
    command.add_option("--precision", options.precision,
                       "Compute precision: " + names + "or auto (the fastest within the accuracy bounds on this CPU)")
        ->capture_default_str()
        ->check(CLI::IsMember(accepted));
    command.add_option("--threads", options.threads, "Threads (0: one per core)");
    return model;
}

std::unique_ptr<ClipModel> load_model(const ModelOptions& options) {
    ModelLoadOptions load;
    load.backend = options.backend;
    load.threads = options.threads;
    if (options.precision == "auto") {
        load.fastest_precision = true;
    } else {
        load.precision = kernels::parse_precision(options.precision);
    }
    return ClipModel::load(resolve_model_argument(options.model), load);
}

}  // namespace mclip::tools
