// Label lists (--labels), label files (--labels-file) and prompt templates (--template) as
// `mclip classify` and `live` read them. The input is split at its first NUL byte: before it the
// labels, after it templates, one per line.
#include "fuzz_support.h"
#include "mclip/labels.h"

#include <string_view>
#include <vector>

namespace {

void labels(std::span<const uint8_t> bytes) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const size_t split = text.find('\0');
    const std::string_view label_text = text.substr(0, split);
    const std::string_view template_text = split == std::string_view::npos ? std::string_view() : text.substr(split + 1);

    static mclip::fuzz::ScratchFile scratch(".txt");
    scratch.write(std::span<const uint8_t>(bytes.data(), label_text.size()));
    mclip::fuzz::expect_clean([&] {
        std::vector<std::string> labels = mclip::parse_label_list(label_text);
        const std::vector<std::string> from_file = mclip::read_label_file(scratch.path());
        labels.insert(labels.end(), from_file.begin(), from_file.end());
        (void)mclip::duplicate_labels(labels);
        std::vector<std::string> templates;
        size_t start = 0;
        while (start < template_text.size()) {
            size_t end = template_text.find('\n', start);
            if (end == std::string_view::npos) end = template_text.size();
            templates.emplace_back(template_text.substr(start, end - start));
            start = end + 1;
        }
        if (templates.empty()) templates = mclip::default_templates();
        mclip::validate_templates(templates);
        (void)mclip::expand_prompts(labels, templates);
    });
}

}  // namespace

MCLIP_FUZZ_TARGET(labels)
