#include "models/reparam.h"

#include <cmath>

#include "common/error.h"

namespace mclip {

namespace {
constexpr double kBatchNormEps = 1e-5;
}

BatchNormAffine read_batch_norm(const WeightSource& source, const std::string& prefix, int channels) {
    const Shape shape{channels};
    const Tensor gamma = source.get(prefix + ".weight", shape);
    const Tensor beta = source.get(prefix + ".bias", shape);
    const Tensor mean = source.get(prefix + ".running_mean", shape);
    const Tensor var = source.get(prefix + ".running_var", shape);
    BatchNormAffine bn;
    bn.scale.resize(channels);
    bn.shift.resize(channels);
    for (int c = 0; c < channels; ++c) {
        // In double, then rounded once: the reference computes these in float32, and either way
        // the folded model differs from the branchy one by float32 rounding only.
        const double t = gamma.f32()[c] / std::sqrt(static_cast<double>(var.f32()[c]) + kBatchNormEps);
        bn.scale[c] = static_cast<float>(t);
        bn.shift[c] = static_cast<float>(beta.f32()[c] - mean.f32()[c] * t);
    }
    return bn;
}

FoldedConv fold_conv_batch_norm(const Tensor& weight, const BatchNormAffine& bn) {
    const int64_t out = weight.dim(0);
    if (static_cast<int64_t>(bn.scale.size()) != out) throw Error(ErrorCode::internal, "BatchNorm width differs from conv output");
    const int64_t per_out = weight.elements() / out;
    FoldedConv folded{Tensor::zeros_f32(weight.shape()), Tensor::from_f32({out}, bn.shift)};
    const float* w = weight.f32();
    float* dst = folded.weight.f32();
    for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < per_out; ++i) dst[o * per_out + i] = w[o * per_out + i] * bn.scale[o];
    }
    return folded;
}

Tensor pad_kernel(const Tensor& weight, int kh, int kw) {
    const int64_t out = weight.dim(0), in = weight.dim(1), h = weight.dim(2), w = weight.dim(3);
    if (h > kh || w > kw || (kh - h) % 2 || (kw - w) % 2) throw Error(ErrorCode::internal, "cannot centre-pad kernel");
    Tensor padded = Tensor::zeros_f32({out, in, kh, kw});
    const int64_t top = (kh - h) / 2, left = (kw - w) / 2;
    for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < in; ++i) {
            for (int64_t y = 0; y < h; ++y) {
                for (int64_t x = 0; x < w; ++x) {
                    padded.f32()[((o * in + i) * kh + y + top) * kw + x + left] = weight.f32()[((o * in + i) * h + y) * w + x];
                }
            }
        }
    }
    return padded;
}

Tensor identity_kernel(int channels, int in_per_group, int kh, int kw) {
    Tensor k = Tensor::zeros_f32({channels, in_per_group, kh, kw});
    for (int o = 0; o < channels; ++o) {
        k.f32()[((static_cast<int64_t>(o) * in_per_group + o % in_per_group) * kh + kh / 2) * kw + kw / 2] = 1.0f;
    }
    return k;
}

void add_folded(FoldedConv& into, const FoldedConv& other) {
    if (into.weight.shape() != other.weight.shape()) throw Error(ErrorCode::internal, "adding kernels of different shapes");
    for (int64_t i = 0; i < into.weight.elements(); ++i) into.weight.f32()[i] += other.weight.f32()[i];
    for (int64_t i = 0; i < into.bias.elements(); ++i) into.bias.f32()[i] += other.bias.f32()[i];
}

void scale_folded(FoldedConv& conv, const std::vector<float>& per_channel) {
    const int64_t out = conv.weight.dim(0);
    const int64_t per_out = conv.weight.elements() / out;
    for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < per_out; ++i) conv.weight.f32()[o * per_out + i] *= per_channel[o];
        conv.bias.f32()[o] *= per_channel[o];
    }
}

FoldedConv fold_input_affine(const Tensor& weight, const Tensor& bias, const BatchNormAffine& input) {
    const int64_t out = weight.dim(0), in = weight.dim(1);
    FoldedConv folded{Tensor::zeros_f32({out, in}), bias.empty() ? Tensor::zeros_f32({out}) : bias.clone()};
    for (int64_t o = 0; o < out; ++o) {
        double shifted = 0;
        for (int64_t i = 0; i < in; ++i) {
            const float w = weight.f32()[o * in + i];
            folded.weight.f32()[o * in + i] = w * input.scale[i];
            shifted += static_cast<double>(w) * input.shift[i];
        }
        folded.bias.f32()[o] += static_cast<float>(shifted);
    }
    return folded;
}

FoldedConv fold_mobileone(const WeightSource& source, const std::string& prefix, const MobileOneDesc& d) {
    const int in_per_group = d.in_channels / d.groups;
    const Shape kernel_shape{d.out_channels, in_per_group, d.kernel_h, d.kernel_w};
    if (source.has(prefix + ".reparam_conv.weight")) {
        return {source.get(prefix + ".reparam_conv.weight", kernel_shape).clone(),
                source.get(prefix + ".reparam_conv.bias", {d.out_channels}).clone()};
    }
    FoldedConv total{Tensor::zeros_f32(kernel_shape), Tensor::zeros_f32({d.out_channels})};
    for (int i = 0; i < d.conv_branches; ++i) {
        const std::string branch = prefix + ".rbr_conv." + std::to_string(i);
        add_folded(total, fold_conv_batch_norm(source.get(branch + ".conv.weight", kernel_shape),
                                               read_batch_norm(source, branch + ".bn", d.out_channels)));
    }
    if (d.scale_branch) {
        FoldedConv scale = fold_conv_batch_norm(source.get(prefix + ".rbr_scale.conv.weight", {d.out_channels, in_per_group, 1, 1}),
                                                read_batch_norm(source, prefix + ".rbr_scale.bn", d.out_channels));
        scale.weight = pad_kernel(scale.weight, d.kernel_h, d.kernel_w);
        add_folded(total, scale);
    }
    if (d.skip_branch) {
        add_folded(total, fold_conv_batch_norm(identity_kernel(d.in_channels, in_per_group, d.kernel_h, d.kernel_w),
                                               read_batch_norm(source, prefix + ".rbr_skip", d.in_channels)));
    }
    return total;
}

std::vector<float> read_channel_vector(const WeightSource& source, const std::string& name, int channels) {
    const Tensor t = source.get(name, {channels, 1, 1});
    return std::vector<float>(t.f32(), t.f32() + channels);
}

}  // namespace mclip
