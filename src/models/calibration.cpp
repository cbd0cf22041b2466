#include "models/calibration.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "mclip/progress.h"
#include "io/gguf.h"
#include "models/encoder.h"

namespace mclip {

namespace {

constexpr const char* kLayersKey = "mclip.calibration.layers";
constexpr const char* kRangesKey = "mclip.calibration.input_ranges";
constexpr const char* kSourceKey = "mclip.calibration.source";
constexpr const char* kChannelCountsKey = "mclip.calibration.channel_counts";
constexpr const char* kChannelRangesKey = "mclip.calibration.channel_ranges";

// Layer name → largest |input| seen so far in each input channel.
using RangeMap = std::map<std::string, std::vector<float>>;

// x holds rows of `channels` values (NHWC positions, or matrix rows).
void record(RangeMap& ranges, const std::string& name, const void* x, int64_t count, int channels, DType type) {
    std::vector<float>& largest = ranges[name];
    largest.resize(channels, 0.0f);
    for (int64_t row = 0; row < count / channels; ++row) {
        for (int c = 0; c < channels; ++c) {
            const int64_t i = row * channels + c;
            const float v = type == DType::bf16 ? bf16_to_f32(static_cast<const uint16_t*>(x)[i]) : static_cast<const float*>(x)[i];
            largest[c] = std::max(largest[c], std::fabs(v));
        }
    }
}

class RecordingConv2d final : public kernels::Conv2d {
public:
    RecordingConv2d(std::unique_ptr<kernels::Conv2d> inner, RangeMap& ranges)
        : Conv2d(inner->desc()), inner_(std::move(inner)), ranges_(ranges) {}

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        record(ranges_, desc_.name, x, static_cast<int64_t>(n) * h * w * desc_.in_channels, desc_.in_channels, desc_.input);
        inner_->run(x, n, h, w, y);
    }

private:
    std::unique_ptr<kernels::Conv2d> inner_;
    RangeMap& ranges_;
};

class RecordingLinear final : public kernels::Linear {
public:
    RecordingLinear(std::unique_ptr<kernels::Linear> inner, RangeMap& ranges)
        : Linear(inner->desc()), inner_(std::move(inner)), ranges_(ranges) {}

protected:
    void execute(const void* x, int rows, void* y) const override {
        record(ranges_, desc_.name, x, static_cast<int64_t>(rows) * desc_.in_features, desc_.in_features, desc_.input);
        inner_->run(x, rows, y);
    }

private:
    std::unique_ptr<kernels::Linear> inner_;
    RangeMap& ranges_;
};

// Takes the layers of an int8 graph and builds them computing in float32 (on the graph's
// buffers, bf16 or float32 as the int8 model has them here); the int8-capable ones record their
// inputs.
class RangeRecorder final : public kernels::Backend {
public:
    RangeRecorder(kernels::Backend& base, RangeMap& ranges) : base_(base), ranges_(ranges) {}
    std::string name() const override { return base_.name(); }
    bool native(kernels::Precision precision) const override { return base_.native(precision); }
    kernels::Precision int8_companion() const override { return base_.int8_companion(); }
    bool bf16_is_faster() const override { return base_.bf16_is_faster(); }
    std::unique_ptr<kernels::Conv2d> make_conv2d(const kernels::ConvDesc& desc, const Tensor& weight, const Tensor& bias) override {
        kernels::ConvDesc d = desc;
        d.precision = kernels::Precision::f32;
        auto conv = base_.make_conv2d(d, weight, bias);
        if (!kernels::int8_capable(desc)) return conv;
        return std::make_unique<RecordingConv2d>(std::move(conv), ranges_);
    }
    std::unique_ptr<kernels::Linear> make_linear(const kernels::LinearDesc& desc, const Tensor& weight, const Tensor& bias) override {
        kernels::LinearDesc d = desc;
        d.precision = kernels::Precision::f32;
        auto linear = base_.make_linear(d, weight, bias);
        if (!kernels::int8_capable(desc)) return linear;
        return std::make_unique<RecordingLinear>(std::move(linear), ranges_);
    }
    std::unique_ptr<kernels::Attention> make_attention(const kernels::AttentionDesc& desc) override {
        kernels::AttentionDesc d = desc;
        d.precision = kernels::Precision::f32;
        return base_.make_attention(d);
    }

private:
    kernels::Backend& base_;
    RangeMap& ranges_;
};

}  // namespace

void write_calibration(GgufWriter& writer, const Calibration& calibration) {
    std::vector<std::string> layers;
    std::vector<float> ranges, channel_ranges;
    std::vector<int32_t> channel_counts;
    for (const auto& [name, range] : calibration.input_ranges) {
        layers.push_back(name);
        ranges.push_back(range);
        const auto channels = calibration.channel_ranges.find(name);
        const bool known = channels != calibration.channel_ranges.end();
        channel_counts.push_back(known ? static_cast<int32_t>(channels->second.size()) : 0);
        if (known) channel_ranges.insert(channel_ranges.end(), channels->second.begin(), channels->second.end());
    }
    writer.set_string_array(kLayersKey, layers);
    writer.set_f32_array(kRangesKey, ranges);
    writer.set_i32_array(kChannelCountsKey, channel_counts);
    writer.set_f32_array(kChannelRangesKey, channel_ranges);
    writer.set_string(kSourceKey, calibration.source);
}

std::optional<Calibration> read_calibration(const GgufFile& file) {
    if (!file.has(kLayersKey)) return std::nullopt;
    auto refuse = [&](const std::string& what) { throw Error(ErrorCode::invalid_input, file.path() + ": " + what); };
    const std::vector<std::string> layers = file.get_string_array(kLayersKey);
    const std::vector<double> ranges = file.get_float_array(kRangesKey);
    if (layers.size() != ranges.size()) {
        refuse(std::string(kLayersKey) + " has " + std::to_string(layers.size()) + " entries but " + kRangesKey + " has " +
               std::to_string(ranges.size()));
    }
    auto check_range = [&](double range, const std::string& what) {
        if (!(range > 0) || !std::isfinite(range)) refuse(what + " is " + std::to_string(range) + " (must be positive and finite)");
    };
    Calibration calibration;
    for (size_t i = 0; i < layers.size(); ++i) {
        check_range(ranges[i], "calibrated input range of " + layers[i]);
        calibration.input_ranges[layers[i]] = static_cast<float>(ranges[i]);
    }
    // Per-channel ranges: files calibrated before them have none (their int8 layers run unsmoothed).
    if (file.has(kChannelCountsKey)) {
        const std::vector<int64_t> counts = file.get_int_array(kChannelCountsKey);
        const std::vector<double> channel_ranges = file.get_float_array(kChannelRangesKey);
        if (counts.size() != layers.size()) {
            refuse(std::string(kChannelCountsKey) + " has " + std::to_string(counts.size()) + " entries for " + std::to_string(layers.size()) + " layers");
        }
        size_t at = 0;
        for (size_t i = 0; i < layers.size(); ++i) {
            if (counts[i] < 0 || static_cast<uint64_t>(counts[i]) > channel_ranges.size() - at) {
                refuse(std::string(kChannelRangesKey) + " is shorter than " + kChannelCountsKey + " says");
            }
            if (counts[i] == 0) continue;
            std::vector<float>& channels = calibration.channel_ranges[layers[i]];
            for (int64_t c = 0; c < counts[i]; ++c, ++at) {
                // A channel that was all zeros has range 0; it keeps factor 1.
                if (channel_ranges[at] != 0) check_range(channel_ranges[at], "a calibrated channel range of " + layers[i]);
                channels.push_back(static_cast<float>(channel_ranges[at]));
            }
        }
        if (at != channel_ranges.size()) refuse(std::string(kChannelRangesKey) + " is longer than " + kChannelCountsKey + " says");
    }
    calibration.source = file.get_string_or(kSourceKey, "");
    return calibration;
}

Calibration measure_input_ranges(const ModelConfig& config, const WeightSource& weights, const Tensor& images,
                                 const std::vector<int32_t>& tokens, std::string source) {
    Calibration calibration;
    calibration.source = std::move(source);
    RangeMap ranges;
    RangeRecorder recorder(kernels::default_backend(), ranges);
    const GraphOptions options{&recorder, kernels::Precision::int8};
    const int64_t image_count = images.empty() ? 0 : images.dim(0);
    const int64_t prompt_count = static_cast<int64_t>(tokens.size()) / config.text.context;
    // Small batches bound the activation memory; the ranges do not depend on the batching.
    constexpr int64_t kImagesPerRun = 8, kPromptsPerRun = 64;
    ProgressBar progress("calibrating", static_cast<uint64_t>(image_count + prompt_count));
    if (image_count > 0) {
        const auto encoder = config.image.kind == ImageEncoderKind::mci ? make_mci_image_encoder(config, weights, options)
                                                                        : make_vit_image_encoder(config, weights, options);
        const int64_t image_values = images.elements() / image_count;
        for (int64_t start = 0; start < image_count; start += kImagesPerRun) {
            const int64_t count = std::min(kImagesPerRun, image_count - start);
            Shape shape = images.shape();
            shape[0] = count;
            encoder->encode(Tensor::from_f32(shape, {images.f32() + start * image_values, static_cast<size_t>(count * image_values)}));
            progress.advance(static_cast<uint64_t>(count));
        }
    }
    if (prompt_count > 0) {
        const auto encoder = make_text_encoder(config, weights, options);
        for (int64_t start = 0; start < prompt_count; start += kPromptsPerRun) {
            const int64_t count = std::min(kPromptsPerRun, prompt_count - start);
            encoder->encode(tokens.data() + start * config.text.context, static_cast<int>(count));
            progress.advance(static_cast<uint64_t>(count));
        }
    }
    progress.finish();
    // A layer whose input was all zeros has no usable range; it runs bf16.
    for (const auto& [name, channels] : ranges) {
        const float largest = *std::max_element(channels.begin(), channels.end());
        if (largest <= 0) continue;
        calibration.input_ranges[name] = largest;
        calibration.channel_ranges[name] = channels;
    }
    return calibration;
}

std::vector<float> smoothing_factors(const std::vector<float>& channel_ranges, const Tensor& weight) {
    const Tensor w = weight.to_f32();
    const int64_t channels = w.dim(1);
    if (static_cast<int64_t>(channel_ranges.size()) != channels) {
        throw Error(ErrorCode::invalid_input, "calibration data for " + std::to_string(channel_ranges.size()) +
                                                  " input channels where the layer has " + std::to_string(channels));
    }
    const int64_t inner = w.elements() / w.dim(0) / channels;
    std::vector<float> weight_ranges(channels, 0.0f);
    for (int64_t i = 0; i < w.elements(); ++i) {
        float& range = weight_ranges[(i / inner) % channels];
        range = std::max(range, std::fabs(w.f32()[i]));
    }
    std::vector<float> factors(channels, 1.0f);
    for (int64_t c = 0; c < channels; ++c) {
        if (channel_ranges[c] > 0 && weight_ranges[c] > 0) factors[c] = std::sqrt(channel_ranges[c] / weight_ranges[c]);
    }
    return factors;
}

std::vector<float> equalizing_factors(const std::vector<float>& channel_ranges, int channels) {
    if (static_cast<int64_t>(channel_ranges.size()) != channels) {
        throw Error(ErrorCode::invalid_input, "calibration data for " + std::to_string(channel_ranges.size()) +
                                                  " input channels where the layer has " + std::to_string(channels));
    }
    const float largest = *std::max_element(channel_ranges.begin(), channel_ranges.end());
    std::vector<float> factors(channels, 1.0f);
    for (int c = 0; c < channels; ++c) {
        if (channel_ranges[c] > 0) factors[c] = channel_ranges[c] / largest;
    }
    return factors;
}

namespace {

std::vector<float> smoothing_for(const kernels::ConvDesc& d, const std::vector<float>& channel_ranges, const Tensor& weight) {
    return d.depthwise() ? equalizing_factors(channel_ranges, d.in_channels) : smoothing_factors(channel_ranges, weight);
}

std::vector<float> smoothing_for(const kernels::LinearDesc&, const std::vector<float>& channel_ranges, const Tensor& weight) {
    return smoothing_factors(channel_ranges, weight);
}

// Fills in a layer's calibrated range and, where the layer runs int8 and its channels were
// measured, its smoothing factors and the range of the smoothed input.
template <typename Desc>
void calibrate(Desc& d, const Calibration& calibration, const Tensor& weight) {
    const auto range = calibration.input_ranges.find(d.name);
    d.input_range = range == calibration.input_ranges.end() ? 0.0f : range->second;
    const auto channels = calibration.channel_ranges.find(d.name);
    if (kernels::compute_precision(d) != kernels::Precision::int8 || channels == calibration.channel_ranges.end()) return;
    d.input_smoothing = smoothing_for(d, channels->second, weight);
    d.input_range = 0;
    for (size_t c = 0; c < channels->second.size(); ++c) d.input_range = std::max(d.input_range, channels->second[c] / d.input_smoothing[c]);
}

// An FFN's desc with its two products' calibration, as their convolutions would get it.
kernels::PointwiseFfnDesc calibrated_ffn(const kernels::PointwiseFfnDesc& desc, const Calibration& calibration, const Tensor& w1,
                                         const Tensor& w2) {
    kernels::PointwiseFfnDesc d = desc;
    if (d.precision != kernels::Precision::int8) return d;
    kernels::ConvDesc fc1;
    fc1.in_channels = d.channels;
    fc1.out_channels = d.hidden;
    fc1.precision = d.precision;
    fc1.name = d.fc1_name;
    kernels::ConvDesc fc2 = fc1;
    fc2.in_channels = d.hidden;
    fc2.out_channels = d.channels;
    fc2.name = d.fc2_name;
    calibrate(fc1, calibration, w1);
    calibrate(fc2, calibration, w2);
    d.input_range = fc1.input_range;
    d.input_smoothing = fc1.input_smoothing;
    d.hidden_range = fc2.input_range;
    d.hidden_smoothing = fc2.input_smoothing;
    return d;
}

}  // namespace

std::unique_ptr<kernels::Conv2d> CalibratedBackend::make_conv2d(const kernels::ConvDesc& desc, const Tensor& weight,
                                                                const Tensor& bias) {
    kernels::ConvDesc d = desc;
    calibrate(d, calibration_, weight);
    ++layers_;
    auto conv = base_.make_conv2d(d, weight, bias);
    // As built: a backend may compute a layer int8 could serve in another precision.
    if (kernels::compute_precision(conv->desc()) == kernels::Precision::int8) {
        ++int8_layers_;
    } else if (kernels::compute_precision(d) == kernels::Precision::int8) {
        ++declined_layers_;
    }
    return conv;
}

void CalibratedBackend::count_ffn(const kernels::PointwiseFfnDesc& built) {
    layers_ += 2;
    const bool int8 = built.precision == kernels::Precision::int8;
    for (const std::string& layer : {built.fc1_name, built.fc2_name}) (int8 ? int8_layers_ : fused_layers_) += calibration_.input_ranges.count(layer);
}

std::unique_ptr<kernels::PointwiseFfn> CalibratedBackend::make_pointwise_ffn(const kernels::PointwiseFfnDesc& desc, const Tensor& w1,
                                                                           const Tensor& b1, const Tensor& w2, const Tensor& b2) {
    auto fused = base_.make_pointwise_ffn(calibrated_ffn(desc, calibration_, w1, w2), w1, b1, w2, b2);
    if (fused) count_ffn(fused->desc());
    return fused;
}

std::unique_ptr<kernels::DepthwiseFfn> CalibratedBackend::make_depthwise_ffn(const kernels::ConvDesc& depthwise, const Tensor& depthwise_weight,
                                                                           const Tensor& depthwise_bias, const kernels::PointwiseFfnDesc& ffn,
                                                                           const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
    kernels::ConvDesc d = depthwise;
    calibrate(d, calibration_, depthwise_weight);
    auto block = base_.make_depthwise_ffn(d, depthwise_weight, depthwise_bias, calibrated_ffn(ffn, calibration_, w1, w2), w1, b1, w2, b2);
    if (block) {
        ++layers_;
        if (kernels::compute_precision(block->depthwise()) == kernels::Precision::int8) ++int8_layers_;
        count_ffn(block->ffn());
    }
    return block;
}

std::unique_ptr<kernels::ConvPair> CalibratedBackend::make_conv_pair(const kernels::ConvDesc& first, const Tensor& first_weight,
                                                                     const Tensor& first_bias, const kernels::ConvDesc& second,
                                                                     const Tensor& second_weight, const Tensor& second_bias) {
    if (kernels::int8_capable(first) || kernels::int8_capable(second)) return nullptr;
    auto pair = base_.make_conv_pair(first, first_weight, first_bias, second, second_weight, second_bias);
    if (pair) layers_ += 2;
    return pair;
}

std::unique_ptr<kernels::Linear> CalibratedBackend::make_linear(const kernels::LinearDesc& desc, const Tensor& weight,
                                                                const Tensor& bias) {
    kernels::LinearDesc d = desc;
    calibrate(d, calibration_, weight);
    ++layers_;
    if (kernels::compute_precision(d) == kernels::Precision::int8) ++int8_layers_;
    return base_.make_linear(d, weight, bias);
}

}  // namespace mclip
