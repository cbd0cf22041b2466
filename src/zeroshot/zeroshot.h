// Zero-shot classification: class names become text embeddings through prompt templates; an
// image's cosine similarity to each class, scaled by the model's logit scale, goes through a
// softmax over the classes. Below a probability threshold the answer is "unknown".
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mclip/labels.h"
#include "mclip/mclip.h"
#include "tensor/tensor.h"

namespace mclip {

// Per class: normalize each template's embedding, average them, normalize again.
// prompt_embeddings [classes · templates, D] (class-major) → [classes, D].
Tensor ensemble_class_embeddings(const Tensor& prompt_embeddings, int classes, int templates);

class ZeroShotClassifier {
public:
    // class_embeddings [K, D], unit length; logit_scale = min(exp(logit_scale), 100).
    ZeroShotClassifier(std::vector<std::string> labels, Tensor class_embeddings, float logit_scale);

    const std::vector<std::string>& labels() const { return labels_; }
    // Logits (scale · cosine) against every class.
    std::vector<float> logits(const float* image_embedding) const;
    // Softmax over classes, the top_k best, and the unknown flag (mclip/mclip.h's Classification).
    Classification classify(const float* image_embedding, int top_k, float threshold) const;

private:
    // Cosine similarities of one image embedding with every class, in double precision.
    std::vector<double> dot_products(const float* image_embedding) const;

    std::vector<std::string> labels_;
    Tensor classes_;
    float logit_scale_;
};

}  // namespace mclip
