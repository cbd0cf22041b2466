// int8 calibration: the range of each int8-capable layer's input (kernels.h, Precision::int8),
// measured by running the float32 graphs over real images and prompts, stored in the model file.
//
//   mclip.calibration.layers          layer names (the weight names without ".weight")
//   mclip.calibration.input_ranges    largest |input| of each, float32, same order
//   mclip.calibration.channel_counts  input channels of each (int32, same order; 0: not measured)
//   mclip.calibration.channel_ranges  largest |input| per input channel, all layers' concatenated
//   mclip.calibration.source          what the ranges were measured on, for people
//
// The per-channel ranges give SmoothQuant's factors (kernels::ConvDesc::input_smoothing):
// s_c = sqrt(max|x_c| / max|W[:, c]|) balances each input channel's range against its weights'
// (α = 1/2 in the SmoothQuant paper), so a few outlier channels no longer set the step of the
// whole input. Files calibrated before the per-channel keys run unsmoothed.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "models/config.h"
#include "models/weights.h"
#include "tensor/tensor.h"

namespace mclip {

class GgufFile;
class GgufWriter;

struct Calibration {
    std::map<std::string, float> input_ranges;                 // layer name → largest |input| seen
    std::map<std::string, std::vector<float>> channel_ranges;  // layer name → the same per input channel
    std::string source;
};

// SmoothQuant's factor per input channel of a layer with weights [out, in, ...] whose inputs
// reached channel_ranges (1 where a channel or its weights are all zero).
std::vector<float> smoothing_factors(const std::vector<float>& channel_ranges, const Tensor& weight);
// A depthwise layer's factors: each channel meets only its own weights, so the input is divided
// down to the largest channel's range, s_c = max|x_c| / max_k max|x_k| (1 for a channel never
// seen nonzero), and the smoothed input's single step is in effect a step per channel.
std::vector<float> equalizing_factors(const std::vector<float>& channel_ranges, int channels);

void write_calibration(GgufWriter& writer, const Calibration& calibration);
// The calibration stored in a model file, or nullopt when it has none.
std::optional<Calibration> read_calibration(const GgufFile& file);

// Runs the float32 graphs over images [n, 3, size, size] (preprocessed) and token rows
// [rows, context], and records the largest |input| of every layer that could run int8.
Calibration measure_input_ranges(const ModelConfig& config, const WeightSource& weights, const Tensor& images,
                                 const std::vector<int32_t>& tokens, std::string source);

// A backend that builds layers on `base` with their calibrated input ranges and smoothing
// factors filled in; int8 layers without a range run bf16 (compute_precision).
class CalibratedBackend final : public kernels::Backend {
public:
    CalibratedBackend(kernels::Backend& base, const Calibration& calibration) : base_(base), calibration_(calibration) {}
    std::string name() const override { return base_.name(); }
    bool native(kernels::Precision precision) const override { return base_.native(precision); }
    kernels::Precision int8_companion() const override { return base_.int8_companion(); }
    bool bf16_is_faster() const override { return base_.bf16_is_faster(); }
    std::unique_ptr<kernels::Conv2d> make_conv2d(const kernels::ConvDesc& desc, const Tensor& weight, const Tensor& bias) override;
    std::unique_ptr<kernels::Linear> make_linear(const kernels::LinearDesc& desc, const Tensor& weight, const Tensor& bias) override;
    std::unique_ptr<kernels::Attention> make_attention(const kernels::AttentionDesc& desc) override {
        return base_.make_attention(desc);
    }
    // A fused FFN of an int8 model gets its two products' calibration; it computes in int8 or,
    // where the base backend's fused kernel is faster in bf16, in bf16 with the ranges unused.
    std::unique_ptr<kernels::PointwiseFfn> make_pointwise_ffn(const kernels::PointwiseFfnDesc& desc, const Tensor& w1, const Tensor& b1,
                                                              const Tensor& w2, const Tensor& b2) override;
    // A whole ConvFFN block gets its three layers' calibration, as they would apart.
    std::unique_ptr<kernels::DepthwiseFfn> make_depthwise_ffn(const kernels::ConvDesc& depthwise, const Tensor& depthwise_weight,
                                                              const Tensor& depthwise_bias, const kernels::PointwiseFfnDesc& ffn, const Tensor& w1,
                                                              const Tensor& b1, const Tensor& w2, const Tensor& b2) override;
    // The pair's layers are never int8 (int8_capable: a stride-2 depthwise layer, and one with too
    // few input channels in the MCi stem), so they go to the base backend as they are.
    std::unique_ptr<kernels::ConvPair> make_conv_pair(const kernels::ConvDesc& first, const Tensor& first_weight, const Tensor& first_bias,
                                                      const kernels::ConvDesc& second, const Tensor& second_weight,
                                                      const Tensor& second_bias) override;
    // How many layers got int8 (fused or not), how many calibrated ones run in a fused bf16 FFN
    // instead, how many other calibrated ones the base backend computes in another precision
    // (depthwise ones in float32 where it has no int8 depthwise kernel), and how many were built
    // in all, for the load log.
    int int8_layers() const { return int8_layers_; }
    int fused_layers() const { return fused_layers_; }
    int declined_layers() const { return declined_layers_; }
    int layers() const { return layers_; }

private:
    // Counts a fused FFN's two layers as built.
    void count_ffn(const kernels::PointwiseFfnDesc& built);

    kernels::Backend& base_;
    const Calibration& calibration_;
    int int8_layers_ = 0;
    int fused_layers_ = 0;
    int declined_layers_ = 0;
    int layers_ = 0;
};

}  // namespace mclip
