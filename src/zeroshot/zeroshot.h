// Zero-shot classification: class names become text embeddings through prompt templates; an
// image's cosine similarity to each class, scaled by the model's logit scale, goes through a
// softmax over the classes. Below a probability threshold the answer is "unknown".
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/tensor.h"

namespace mclip {

// "{}" in a template is replaced by the class name, e.g. "a photo of a {}." + "dog".
std::vector<std::string> default_templates();
// Throws Error(invalid_argument) for an empty list or a template without "{}".
void validate_templates(const std::vector<std::string>& templates);
// Class-major: prompts[c · T + t] = templates[t] with labels[c].
std::vector<std::string> expand_prompts(const std::vector<std::string>& labels, const std::vector<std::string>& templates);

// "person, forklift,car" → {"person", "forklift", "car"}: trimmed, empty entries dropped.
std::vector<std::string> parse_label_list(std::string_view text);
// One label per line; blank lines and lines starting with '#' are skipped.
std::vector<std::string> read_label_file(const std::filesystem::path& path);
// Built-in label sets by name; throws Error(invalid_argument) listing the names when unknown.
const std::vector<std::string>& label_preset(const std::string& name);
std::vector<std::string> label_preset_names();
// Labels that occur more than once (case-insensitively), each reported once.
std::vector<std::string> duplicate_labels(const std::vector<std::string>& labels);

// Per class: normalize each template's embedding, average them, normalize again.
// prompt_embeddings [classes · templates, D] (class-major) → [classes, D].
Tensor ensemble_class_embeddings(const Tensor& prompt_embeddings, int classes, int templates);

struct ClassScore {
    int index = 0;
    float probability = 0;
    float logit = 0;
};

struct Classification {
    std::vector<ClassScore> top;  // best first
    bool unknown = false;         // the best probability is below the threshold
};

class ZeroShotClassifier {
public:
    // class_embeddings [K, D], unit length; logit_scale = min(exp(logit_scale), 100).
    ZeroShotClassifier(std::vector<std::string> labels, Tensor class_embeddings, float logit_scale);

    const std::vector<std::string>& labels() const { return labels_; }
    // Logits (scale · cosine) of one image embedding (any length) against every class.
    std::vector<float> logits(const float* image_embedding) const;
    // Softmax over classes, the top_k best, and the unknown flag.
    Classification classify(const float* image_embedding, int top_k, float threshold) const;

private:
    std::vector<std::string> labels_;
    Tensor classes_;
    float logit_scale_;
};

}  // namespace mclip
