// Where the class names of a zero-shot command come from, with the same options everywhere
// (`mclip classify`, `mclip live`): --labels "a,b,c", --label (repeatable, taken verbatim),
// --labels-file FILE (one per line) and --preset NAME, combined in that order.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "mclip/mclip.h"

namespace mclip::tools {

struct LabelOptions {
    std::string labels;
    std::vector<std::string> label_items;
    std::string labels_file;
    std::string preset;
};

// Registers --labels, --label, --labels-file and --preset on `command`.
void add_label_options(CLI::App& command, LabelOptions& options);

// Whether any of the four options was given (for commands where labels are optional).
bool labels_given(const LabelOptions& options);

// Every label given; throws Error(invalid_argument) when there is none and warns about labels
// given more than once.
std::vector<std::string> gather_labels(const LabelOptions& options);

// The text-embedding cache options of the zero-shot commands: --no-cache and --cache-dir.
struct CacheOptions {
    bool disabled = false;
    std::string dir;
};

void add_cache_options(CLI::App& command, CacheOptions& options);

// The label-set options for these templates and this cache (default: the user's cache folder).
LabelSetOptions label_set_options(const std::vector<std::string>& templates, const CacheOptions& cache);

// Says (at info level) where a label set's embeddings came from and how long they took.
void log_label_set(const LabelSet& labels);

}  // namespace mclip::tools
