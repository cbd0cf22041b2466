#include "label_options.h"

#include "common/error.h"
#include "common/log.h"
#include "zeroshot/zeroshot.h"

namespace mclip::tools {

void add_label_options(CLI::App& command, LabelOptions& options) {
    command.add_option("--labels", options.labels, "Comma-separated labels, e.g. \"person,forklift,car,computer\"");
    // One value per occurrence, so positional arguments after it are not swallowed.
    command.add_option("--label", options.label_items, "One label, taken verbatim (repeatable; may contain commas)")->allow_extra_args(false);
    command.add_option("--labels-file", options.labels_file, "File with one label per line")->check(CLI::ExistingFile);
    std::string names;
    for (const auto& n : label_preset_names()) names += (names.empty() ? "" : ", ") + n;
    command.add_option("--preset", options.preset, "Built-in label set: " + names);
}

std::vector<std::string> gather_labels(const LabelOptions& options) {
    std::vector<std::string> labels = parse_label_list(options.labels);
    labels.insert(labels.end(), options.label_items.begin(), options.label_items.end());
    if (!options.labels_file.empty()) {
        const auto from_file = read_label_file(options.labels_file);
        labels.insert(labels.end(), from_file.begin(), from_file.end());
    }
    if (!options.preset.empty()) {
        const auto& preset = label_preset(options.preset);
        labels.insert(labels.end(), preset.begin(), preset.end());
    }
    if (labels.empty()) {
        throw Error(ErrorCode::invalid_argument, "no labels: give --labels \"person,forklift,car\", --label, --labels-file FILE or --preset NAME");
    }
    for (const auto& duplicate : duplicate_labels(labels)) {
        log_warning("label \"" + duplicate + "\" is given more than once; its probability is split between the copies");
    }
    return labels;
}

}  // namespace mclip::tools
