#include "kernels/avx512/int8_depthwise_ffn.h"

#include "kernels/avx512/int8_depthwise_conv.h"
#include "kernels/avx512/int8_pointwise_ffn.h"
#include "kernels/buffer.h"
#include "kernels/ops.h"

namespace mclip::kernels::avx512 {
namespace {

class Int8DepthwiseFfn final : public DepthwiseFfn {
public:
    Int8DepthwiseFfn(const ConvDesc& depthwise, const Tensor& depthwise_weight, const Tensor& depthwise_bias, const PointwiseFfnDesc& ffn,
                     const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2)
        : DepthwiseFfn(depthwise, ffn),
          depthwise_layer_(make_int8_depthwise_conv2d_to_levels(depthwise, depthwise_weight, depthwise_bias,
                                                                int8_inverse_steps(ffn.input_range, ffn.input_smoothing, ffn.channels))),
          ffn_layer_(make_int8_pointwise_ffn_of_levels(ffn, w1, b1, w2, b2)) {}

protected:
    void execute(float* x, int n, int h, int w) const override {
        const int64_t positions = static_cast<int64_t>(n) * h * w;
        thread_local AlignedBuffer levels;
        void* handed_over = levels.reserve(static_cast<size_t>(positions) * ffn_.channels);
        depthwise_layer_->run(x, n, h, w, handed_over);
        ffn_layer_->run(handed_over, positions, x);
    }

private:
    std::unique_ptr<Conv2d> depthwise_layer_;
    std::unique_ptr<PointwiseFfn> ffn_layer_;
};

}  // namespace

bool handles_int8_depthwise_ffn(const ConvDesc& depthwise, const PointwiseFfnDesc& ffn) {
    return handles_int8_depthwise(depthwise) && !depthwise.accumulate && handles_int8_pointwise_ffn(ffn) &&
           depthwise.out_channels == ffn.channels && depthwise.output == ffn.input;
}

std::unique_ptr<DepthwiseFfn> make_int8_depthwise_ffn(const ConvDesc& depthwise, const Tensor& depthwise_weight, const Tensor& depthwise_bias,
                                                      const PointwiseFfnDesc& ffn, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                                                      const Tensor& b2) {
    return std::make_unique<Int8DepthwiseFfn>(depthwise, depthwise_weight, depthwise_bias, ffn, w1, b1, w2, b2);
}

}  // namespace mclip::kernels::avx512
