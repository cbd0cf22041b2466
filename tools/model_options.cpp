#include "model_options.h"

#include <vector>

#include "mclip/model_file.h"

namespace mclip::tools {
namespace {

std::string joined(const std::vector<std::string>& names) {
    std::string text;
    for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
    return text;
}

}  // namespace

std::string model_file_or_name_help() {
    std::vector<std::string> names;
    for (const KnownModel& model : known_models()) names.push_back(model.name);
    return "Model file (GGUF), or a model name to download once: " + joined(names);
}

CLI::Option* add_model_options(CLI::App& command, ModelOptions& options, const std::string& model_help) {
    CLI::Option* model = command.add_option("--model", options.model, model_help);
    std::vector<std::string> backend_names = {"auto"};
    for (const BackendInfo& backend : backends()) backend_names.push_back(backend.name);
    command.add_option("--backend", options.backend, "Kernels: " + joined(backend_names))
        ->capture_default_str()
        ->check(CLI::IsMember(backend_names));
    std::vector<std::string> precisions = {"auto"};
    const std::vector<std::string> names = precision_names();
    precisions.insert(precisions.end(), names.begin(), names.end());
    command.add_option("--precision", options.precision,
                       "Compute precision: " + joined(names) + ", or auto (the fastest within the accuracy bounds on this CPU)")
        ->capture_default_str()
        ->check(CLI::IsMember(precisions));
    command.add_option("--threads", options.threads, "Threads (0: $OMP_NUM_THREADS when set, else one per core)")->check(CLI::NonNegativeNumber);
    return model;
}

Model load_model(const ModelOptions& options) {
    ModelParams params = model_default_params();
    params.backend = options.backend;
    params.threads = options.threads;
    params.precision = options.precision;
    return Model::load(options.model, params);
}

}  // namespace mclip::tools
