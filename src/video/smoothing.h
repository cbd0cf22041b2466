// Steadier labels for live video: an exponential moving average of each class's probability,
// and hysteresis on the decision, so a label neither flickers between neighbours nor blinks on
// and off around the threshold.
//
//   smoothed_c ← alpha · p_c + (1 − alpha) · smoothed_c        (the first frame: smoothed_c = p_c)
//
// Decision, with threshold T and hysteresis H:
//   no label shown:     show the best class once its smoothed probability reaches T;
//   label L shown:      keep L while smoothed_L ≥ T − H; switch to another class only when it
//                       beats smoothed_L by at least H; below T − H, fall back to the best class
//                       if it reaches T, else to no label ("unknown").
// With alpha = 1 and H = 0 the decision is `mclip classify`'s: the best class, unless its
// probability is below T.
#pragma once

#include <vector>

namespace mclip {

struct SmoothingOptions {
    float alpha = 0.5f;       // weight of the newest frame, in (0, 1]; 1 turns smoothing off
    float threshold = 0.6f;   // T
    float hysteresis = 0.05f; // H, >= 0
};

struct SmoothedDecision {
    int label = -1;           // class index, -1 when unknown
    int best = 0;             // the class with the highest smoothed probability
    float confidence = 0;     // smoothed probability of `label` (of `best` when unknown)
};

class ScoreSmoother {
public:
    // Throws Error(invalid_argument) for alpha outside (0, 1] or a negative hysteresis.
    ScoreSmoother(int classes, const SmoothingOptions& options);

    // probabilities: one per class (a softmax over the classes).
    SmoothedDecision update(const std::vector<float>& probabilities);
    const std::vector<float>& smoothed() const { return smoothed_; }

private:
    SmoothingOptions options_;
    std::vector<float> smoothed_;
    bool started_ = false;
    int label_ = -1;
};

}  // namespace mclip
