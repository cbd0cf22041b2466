// Label sets for zero-shot classification: class names from a comma list, a file or a built-in
// preset, and the prompt templates that turn each name into sentences ("a photo of a {}.").
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mclip/export.h"

namespace mclip {

// "{}" in a template is replaced by the class name, e.g. "a photo of a {}." + "dog".
MCLIP_API std::vector<std::string> default_templates();
// Throws Error(invalid_argument) for an empty list or a template without "{}".
MCLIP_API void validate_templates(const std::vector<std::string>& templates);
// Class-major: prompts[c · T + t] = templates[t] with labels[c].
MCLIP_API std::vector<std::string> expand_prompts(const std::vector<std::string>& labels, const std::vector<std::string>& templates);

// "person, forklift,car" → {"person", "forklift", "car"}: trimmed, empty entries dropped.
MCLIP_API std::vector<std::string> parse_label_list(std::string_view text);
// One label per line; blank lines and lines starting with '#' are skipped.
MCLIP_API std::vector<std::string> read_label_file(const std::filesystem::path& path);
// Built-in label sets by name; throws Error(invalid_argument) listing the names when unknown.
MCLIP_API const std::vector<std::string>& label_preset(const std::string& name);
MCLIP_API std::vector<std::string> label_preset_names();
// Labels that occur more than once (case-insensitively), each reported once.
MCLIP_API std::vector<std::string> duplicate_labels(const std::vector<std::string>& labels);

}  // namespace mclip
