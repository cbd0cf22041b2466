#include "label_options.h"

#include "mclip/error.h"
#include "mclip/labels.h"
#include "mclip/log.h"

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

bool labels_given(const LabelOptions& options) {
    return !options.labels.empty() || !options.label_items.empty() || !options.labels_file.empty() || !options.preset.empty();
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
        log_message(LogLevel::warning, "label \"" + duplicate + "\" is given more than once; its probability is split between the copies");
    }
    return labels;
}

void add_cache_options(CLI::App& command, CacheOptions& options) {
    command.add_flag("--no-cache", options.disabled, "Do not read or write the text embedding cache");
    command.add_option("--cache-dir", options.dir, "Text embedding cache folder (default: ~/.cache/mclip/text-embeddings)");
}

LabelSetOptions label_set_options(const std::vector<std::string>& templates, const CacheOptions& cache) {
    LabelSetOptions options;
    options.templates = templates;
    if (!cache.disabled) options.cache_dir = cache.dir.empty() ? (default_cache_dir() / "text-embeddings").string() : cache.dir;
    return options;
}

void log_label_set(const LabelSet& labels) {
    log_message(LogLevel::info, "text embeddings of " + std::to_string(labels.labels.size()) + " labels x " +
                                    std::to_string(labels.templates.size()) + " templates " +
                                    (labels.from_cache ? "read from cache " : "computed ") +
                                    (labels.cache_entry.empty() ? "" : labels.cache_entry + " ") + "in " +
                                    std::to_string(static_cast<int>(labels.seconds * 1000)) + " ms");
}

}  // namespace mclip::tools
