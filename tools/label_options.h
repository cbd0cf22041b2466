// Where the class names of a zero-shot command come from, with the same options everywhere
// (`mclip classify`, `mclip live`): --labels "a,b,c", --label (repeatable, taken verbatim),
// --labels-file FILE (one per line) and --preset NAME, combined in that order.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace mclip::tools {

struct LabelOptions {
    std::string labels;
    std::vector<std::string> label_items;
    std::string labels_file;
    std::string preset;
};

// Registers --labels, --label, --labels-file and --preset on `command`.
void add_label_options(CLI::App& command, LabelOptions& options);

// Every label given; throws Error(invalid_argument) when there is none and warns about labels
// given more than once.
std::vector<std::string> gather_labels(const LabelOptions& options);

}  // namespace mclip::tools
