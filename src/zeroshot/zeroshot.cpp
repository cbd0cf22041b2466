#include "zeroshot/zeroshot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <vector>

#include "common/error.h"

namespace mclip {

namespace {

// Bounds on the labels and templates users hand in (docs/limits.md): far above any real label set
// (ImageNet-21k has 21,843 classes, OpenAI's prompt ensemble 80 templates, and the text encoder
// sees 77 tokens), low enough that a wrong file (a video, /dev/zero) is refused instead of
// exhausting memory.
constexpr size_t kMaxLabels = 100000;
constexpr size_t kMaxLabelBytes = 1024;
constexpr size_t kMaxLabelFileBytes = size_t{16} << 20;
constexpr size_t kMaxTemplates = 1024;
constexpr size_t kMaxTemplateBytes = 1024;
constexpr size_t kMaxPrompts = size_t{1} << 22;

}  // namespace

std::vector<std::string> default_templates() { return {"a photo of a {}."}; }

void validate_templates(const std::vector<std::string>& templates) {
    if (templates.empty()) throw Error(ErrorCode::invalid_argument, "no prompt templates given");
    if (templates.size() > kMaxTemplates) {
        throw Error(ErrorCode::invalid_argument, std::to_string(templates.size()) + " prompt templates, more than the limit of " +
                                                     std::to_string(kMaxTemplates));
    }
    for (const auto& t : templates) {
        if (t.size() > kMaxTemplateBytes) {
            throw Error(ErrorCode::invalid_argument, "a prompt template of " + std::to_string(t.size()) + " bytes, more than the limit of " +
                                                         std::to_string(kMaxTemplateBytes));
        }
        if (t.find("{}") == std::string::npos) {
            throw Error(ErrorCode::invalid_argument, "prompt template \"" + t + "\" has no {} to put the class name in");
        }
    }
}

std::vector<std::string> expand_prompts(const std::vector<std::string>& labels, const std::vector<std::string>& templates) {
    if (!templates.empty() && labels.size() > kMaxPrompts / templates.size()) {
        throw Error(ErrorCode::invalid_argument, std::to_string(labels.size()) + " labels times " + std::to_string(templates.size()) +
                                                     " templates make more prompts than the limit of " + std::to_string(kMaxPrompts));
    }
    std::vector<std::string> prompts;
    prompts.reserve(labels.size() * templates.size());
    for (const auto& label : labels) {
        for (const auto& t : templates) {
            std::string prompt;
            size_t start = 0, hole;
            while ((hole = t.find("{}", start)) != std::string::npos) {
                prompt += t.substr(start, hole - start) + label;
                start = hole + 2;
            }
            prompts.push_back(prompt + t.substr(start));
        }
    }
    return prompts;
}

namespace {

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

std::string lower_ascii(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}


// Adds a label, enforcing the limits; `where` says where it came from, for the message.
void add_label(std::vector<std::string>& labels, std::string label, const std::string& where, ErrorCode code) {
    if (label.size() > kMaxLabelBytes) {
        throw Error(code, where + "a label of " + std::to_string(label.size()) + " bytes, more than the limit of " +
                              std::to_string(kMaxLabelBytes));
    }
    if (labels.size() == kMaxLabels) throw Error(code, where + "more than " + std::to_string(kMaxLabels) + " labels");
    labels.push_back(std::move(label));
}

}  // namespace

std::vector<std::string> parse_label_list(std::string_view text) {
    std::vector<std::string> labels;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = text.find(',', start);
        const size_t end = comma == std::string_view::npos ? text.size() : comma;
        std::string label = trim(text.substr(start, end - start));
        if (!label.empty()) add_label(labels, std::move(label), "", ErrorCode::invalid_argument);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return labels;
}

std::vector<std::string> read_label_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorCode::io, path.string() + ": cannot open label file");
    std::string text;
    std::vector<char> chunk(1 << 16);  // on the heap: callers' threads may have small stacks (a server's)
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
        text.append(chunk.data(), static_cast<size_t>(in.gcount()));
        if (text.size() > kMaxLabelFileBytes) {
            throw Error(ErrorCode::invalid_input, path.string() + ": larger than " + std::to_string(kMaxLabelFileBytes) +
                                                      " bytes, too large for a label file");
        }
    }
    if (in.bad()) throw Error(ErrorCode::io, path.string() + ": cannot read label file");
    std::vector<std::string> labels;
    size_t start = 0, line_number = 1;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string label = trim(std::string_view(text).substr(start, end - start));
        if (!label.empty() && label[0] != '#') {
            add_label(labels, std::move(label), path.string() + ", line " + std::to_string(line_number) + ": ", ErrorCode::invalid_input);
        }
        start = end + 1;
        ++line_number;
    }
    return labels;
}

namespace {

const std::map<std::string, std::vector<std::string>>& presets() {
    static const std::map<std::string, std::vector<std::string>> table = {
        {"coco", {"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
                  "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
                  "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
                  "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
                  "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
                  "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
                  "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
                  "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
                  "scissors", "teddy bear", "hair drier", "toothbrush"}},
        {"warehouse", {"person", "forklift", "pallet", "cardboard box", "shelf", "truck", "car", "computer", "safety vest",
                       "ladder"}},
        {"animals", {"cat", "dog", "bird", "horse", "cow", "sheep", "fish", "rabbit", "mouse", "elephant", "bear", "lion",
                     "tiger", "monkey", "snake"}},
        {"vehicles", {"car", "truck", "bus", "motorcycle", "bicycle", "train", "airplane", "boat", "rocket", "helicopter"}},
        {"scenes", {"kitchen", "office", "street", "beach", "forest", "mountain", "living room", "bedroom", "warehouse",
                    "parking lot", "sky", "city at night"}},
    };
    return table;
}

}  // namespace

const std::vector<std::string>& label_preset(const std::string& name) {
    auto it = presets().find(name);
    if (it == presets().end()) {
        std::string names;
        for (const auto& n : label_preset_names()) names += (names.empty() ? "" : ", ") + n;
        throw Error(ErrorCode::invalid_argument, "unknown label preset '" + name + "' (known: " + names + ")");
    }
    return it->second;
}

std::vector<std::string> label_preset_names() {
    std::vector<std::string> names;
    for (const auto& [name, labels] : presets()) names.push_back(name);
    return names;
}

std::vector<std::string> duplicate_labels(const std::vector<std::string>& labels) {
    std::set<std::string> seen, reported;
    std::vector<std::string> duplicates;
    for (const auto& label : labels) {
        const std::string key = lower_ascii(label);
        if (!seen.insert(key).second && reported.insert(key).second) duplicates.push_back(label);
    }
    return duplicates;
}

namespace {

void normalize(float* v, int64_t n) {
    double norm = 0;
    for (int64_t i = 0; i < n; ++i) norm += static_cast<double>(v[i]) * v[i];
    const double inv = 1.0 / std::max(std::sqrt(norm), 1e-12);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * inv);
}

}  // namespace

Tensor ensemble_class_embeddings(const Tensor& prompt_embeddings, int classes, int templates) {
    if (prompt_embeddings.rank() != 2 || prompt_embeddings.dim(0) != static_cast<int64_t>(classes) * templates) {
        throw Error(ErrorCode::internal, "prompt embeddings do not match classes × templates");
    }
    const int64_t d = prompt_embeddings.dim(1);
    Tensor out = Tensor::zeros_f32({classes, d});
    std::vector<float> unit(d);
    for (int c = 0; c < classes; ++c) {
        float* mean = out.f32() + c * d;
        for (int t = 0; t < templates; ++t) {
            const float* e = prompt_embeddings.f32() + (static_cast<int64_t>(c) * templates + t) * d;
            std::copy(e, e + d, unit.begin());
            normalize(unit.data(), d);
            for (int64_t i = 0; i < d; ++i) mean[i] += unit[i] / static_cast<float>(templates);
        }
        normalize(mean, d);
    }
    return out;
}

ZeroShotClassifier::ZeroShotClassifier(std::vector<std::string> labels, Tensor class_embeddings, float logit_scale)
    : labels_(std::move(labels)), classes_(std::move(class_embeddings)), logit_scale_(logit_scale) {
    if (labels_.empty()) throw Error(ErrorCode::invalid_argument, "no class labels given");
    if (classes_.rank() != 2 || classes_.dim(0) != static_cast<int64_t>(labels_.size())) {
        throw Error(ErrorCode::internal, "class embeddings do not match the labels");
    }
}

std::vector<double> ZeroShotClassifier::dot_products(const float* image_embedding) const {
    const int64_t d = classes_.dim(1);
    std::vector<float> image(image_embedding, image_embedding + d);
    normalize(image.data(), d);
    std::vector<double> result(labels_.size());
    for (size_t c = 0; c < labels_.size(); ++c) {
        const float* text = classes_.f32() + static_cast<int64_t>(c) * d;
        double dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(image[i]) * text[i];
        result[c] = dot;
    }
    return result;
}

std::vector<float> ZeroShotClassifier::logits(const float* image_embedding) const {
    const std::vector<double> dots = dot_products(image_embedding);
    std::vector<float> result(dots.size());
    for (size_t c = 0; c < dots.size(); ++c) result[c] = static_cast<float>(logit_scale_ * dots[c]);
    return result;
}

Classification ZeroShotClassifier::classify(const float* image_embedding, int top_k, float threshold) const {
    const std::vector<double> cosine = dot_products(image_embedding);
    std::vector<float> logit(cosine.size());
    for (size_t c = 0; c < cosine.size(); ++c) logit[c] = static_cast<float>(logit_scale_ * cosine[c]);
    const float max_logit = *std::max_element(logit.begin(), logit.end());
    double sum = 0;
    std::vector<double> exps(logit.size());
    for (size_t c = 0; c < logit.size(); ++c) sum += exps[c] = std::exp(static_cast<double>(logit[c]) - max_logit);
    std::vector<Score> scores(logit.size());
    for (size_t c = 0; c < logit.size(); ++c) {
        scores[c] = {static_cast<int>(c), labels_[c], static_cast<float>(exps[c] / sum), logit[c], static_cast<float>(cosine[c])};
    }
    // Ties keep label order, so results are deterministic.
    std::stable_sort(scores.begin(), scores.end(), [](const Score& a, const Score& b) { return a.probability > b.probability; });
    Classification result;
    const size_t k = std::min(scores.size(), static_cast<size_t>(std::max(top_k, 1)));
    result.top.assign(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(k));
    result.unknown = result.top.front().probability < threshold;
    result.confidence = result.top.front().probability;
    result.label = result.unknown ? "unknown" : result.top.front().label;
    return result;
}

}  // namespace mclip
