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

// Layer name → largest |input| seen so far.
using RangeMap = std::map<std::string, float>;

void record(RangeMap& ranges, const std::string& name, const void* x, int64_t count, DType type) {
    float largest = 0;
    if (type == DType::bf16) {
        const auto* v = static_cast<const uint16_t*>(x);
        for (int64_t i = 0; i < count; ++i) largest = std::max(largest, std::fabs(bf16_to_f32(v[i])));
    } else {
        const auto* v = static_cast<const float*>(x);
        for (int64_t i = 0; i < count; ++i) largest = std::max(largest, std::fabs(v[i]));
    }
    float& range = ranges[name];
    range = std::max(range, largest);
}

class RecordingConv2d final : public kernels::Conv2d {
public:
    RecordingConv2d(std::unique_ptr<kernels::Conv2d> inner, RangeMap& ranges)
        : Conv2d(inner->desc()), inner_(std::move(inner)), ranges_(ranges) {}

protected:
    void execute(const void* x, int n, int h, int w, void* y) const override {
        record(ranges_, desc_.name, x, static_cast<int64_t>(n) * h * w * desc_.in_channels, desc_.input);
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
        record(ranges_, desc_.name, x, static_cast<int64_t>(rows) * desc_.in_features, desc_.input);
        inner_->run(x, rows, y);
    }

private:
    std::unique_ptr<kernels::Linear> inner_;
    RangeMap& ranges_;
};

// Takes the layers of an int8 graph and builds them computing in float32 (on the graph's bf16
// buffers, as the int8 model has them); the int8-capable ones record their inputs.
class RangeRecorder final : public kernels::Backend {
public:
    RangeRecorder(kernels::Backend& base, RangeMap& ranges) : base_(base), ranges_(ranges) {}
    std::string name() const override { return base_.name(); }
    bool native(kernels::Precision precision) const override { return base_.native(precision); }
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
    std::vector<float> ranges;
    for (const auto& [name, range] : calibration.input_ranges) {
        layers.push_back(name);
        ranges.push_back(range);
    }
    writer.set_string_array(kLayersKey, layers);
    writer.set_f32_array(kRangesKey, ranges);
    writer.set_string(kSourceKey, calibration.source);
}

std::optional<Calibration> read_calibration(const GgufFile& file) {
    if (!file.has(kLayersKey)) return std::nullopt;
    const std::vector<std::string> layers = file.get_string_array(kLayersKey);
    const std::vector<double> ranges = file.get_float_array(kRangesKey);
    if (layers.size() != ranges.size()) {
        throw Error(ErrorCode::invalid_input, file.path() + ": " + kLayersKey + " has " + std::to_string(layers.size()) +
                                                  " entries but " + kRangesKey + " has " + std::to_string(ranges.size()));
    }
    Calibration calibration;
    for (size_t i = 0; i < layers.size(); ++i) {
        if (!(ranges[i] > 0) || !std::isfinite(ranges[i])) {
            throw Error(ErrorCode::invalid_input, file.path() + ": calibrated input range of " + layers[i] + " is " +
                                                      std::to_string(ranges[i]) + " (must be positive and finite)");
        }
        calibration.input_ranges[layers[i]] = static_cast<float>(ranges[i]);
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
    for (const auto& [name, largest] : ranges) {
        if (largest > 0) calibration.input_ranges[name] = largest;
    }
    return calibration;
}

float CalibratedBackend::range_of(const std::string& name) const {
    const auto it = calibration_.input_ranges.find(name);
    return it == calibration_.input_ranges.end() ? 0.0f : it->second;
}

std::unique_ptr<kernels::Conv2d> CalibratedBackend::make_conv2d(const kernels::ConvDesc& desc, const Tensor& weight,
                                                                const Tensor& bias) {
    kernels::ConvDesc d = desc;
    d.input_range = range_of(d.name);
    ++layers_;
    if (kernels::compute_precision(d) == kernels::Precision::int8) ++int8_layers_;
    return base_.make_conv2d(d, weight, bias);
}

std::unique_ptr<kernels::Linear> CalibratedBackend::make_linear(const kernels::LinearDesc& desc, const Tensor& weight,
                                                                const Tensor& bias) {
    kernels::LinearDesc d = desc;
    d.input_range = range_of(d.name);
    ++layers_;
    if (kernels::compute_precision(d) == kernels::Precision::int8) ++int8_layers_;
    return base_.make_linear(d, weight, bias);
}

}  // namespace mclip
