// How the commands that run the encoders (`classify`, `embed`, `live`, `bench`) choose and load
// the model, with the same options everywhere: --model, --backend, --precision and --threads.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "mclip/mclip.h"

namespace mclip::tools {

struct ModelOptions {
    std::string model;  // a model file or a registered model name
    std::string backend = "auto";
    std::string precision = "auto";
    int threads = 0;
};

// The usual help of --model: a file, or one of the names `mclip download` knows.
std::string model_file_or_name_help();

// Registers --model (described by `model_help`), --backend, --precision and --threads on
// `command`. Returns --model, for the commands that require it.
CLI::Option* add_model_options(CLI::App& command, ModelOptions& options, const std::string& model_help = model_file_or_name_help());

// Loads the model the options name, downloading a named model once. --precision auto is the fastest precision within the accuracy bounds on this CPU.
Model load_model(const ModelOptions& options);

}  // namespace mclip::tools
