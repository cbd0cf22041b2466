#include "video/smoothing.h"

#include <string>

#include "common/error.h"

namespace mclip {

ScoreSmoother::ScoreSmoother(int classes, const SmoothingOptions& options) : options_(options), smoothed_(classes, 0.0f) {
    if (!(options.alpha > 0.0f && options.alpha <= 1.0f)) {
        throw Error(ErrorCode::invalid_argument, "smoothing weight must be in (0, 1], got " + std::to_string(options.alpha));
    }
    if (!(options.hysteresis >= 0.0f)) {
        throw Error(ErrorCode::invalid_argument, "hysteresis must not be negative, got " + std::to_string(options.hysteresis));
    }
    if (classes < 1) throw Error(ErrorCode::invalid_argument, "smoothing needs at least one class");
}

SmoothedDecision ScoreSmoother::update(const std::vector<float>& probabilities) {
    if (probabilities.size() != smoothed_.size()) {
        throw Error(ErrorCode::internal, "smoothing got " + std::to_string(probabilities.size()) + " scores for " +
                                             std::to_string(smoothed_.size()) + " classes");
    }
    const float alpha = started_ ? options_.alpha : 1.0f;
    started_ = true;
    int best = 0;
    for (size_t c = 0; c < smoothed_.size(); ++c) {
        smoothed_[c] = alpha * probabilities[c] + (1.0f - alpha) * smoothed_[c];
        if (smoothed_[c] > smoothed_[best]) best = static_cast<int>(c);
    }
    const float threshold = options_.threshold;
    const float band = options_.hysteresis;
    if (label_ < 0) {
        if (smoothed_[best] >= threshold) label_ = best;
    } else if (smoothed_[label_] < threshold - band) {
        label_ = smoothed_[best] >= threshold ? best : -1;
    } else if (best != label_ && smoothed_[best] >= smoothed_[label_] + band) {
        // With H = 0 this follows the best class (ties go to the lower index, as classify's sort).
        label_ = best;
    }
    SmoothedDecision decision;
    decision.label = label_;
    decision.best = best;
    decision.confidence = smoothed_[label_ >= 0 ? label_ : best];
    return decision;
}

}  // namespace mclip
