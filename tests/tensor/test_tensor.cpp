#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "tensor/tensor.h"

using namespace mclip;

TEST(Tensor, HalfConversionsRoundTripEveryHalfValue) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = f16_to_f32(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        EXPECT_EQ(f32_to_f16(f), h) << "half bits " << h;
    }
}

TEST(Tensor, HalfKnownValues) {
    EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
    EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
    EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
    EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);                    // overflow to infinity
    EXPECT_EQ(f32_to_f16(5.960464477539063e-08f), 0x0001);  // smallest subnormal
    EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 4096), 0x3c00);      // halfway rounds to even
    EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.333251953125f);
}

TEST(Tensor, BFloat16RoundsToNearestEven) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    uint32_t bits = 0x3f808000;  // exactly halfway between 0x3f80 and 0x3f81: ties to even
    float f;
    std::memcpy(&f, &bits, 4);
    EXPECT_EQ(f32_to_bf16(f), 0x3f80);
    bits = 0x3f818000;
    std::memcpy(&f, &bits, 4);
    EXPECT_EQ(f32_to_bf16(f), 0x3f82);
    EXPECT_FLOAT_EQ(bf16_to_f32(0x4049), 3.140625f);
}

TEST(Tensor, ToF32WidensEveryDtype) {
    Tensor t = Tensor::zeros(DType::f64, {3});
    auto* d = static_cast<double*>(t.data());
    d[0] = 1.5;
    d[1] = -2.25;
    d[2] = 1e-3;
    Tensor f = t.to_f32();
    EXPECT_EQ(f.shape(), (Shape{3}));
    EXPECT_FLOAT_EQ(f.f32()[1], -2.25f);
    EXPECT_FLOAT_EQ(f.f32()[2], 1e-3f);
    Tensor i = Tensor::zeros(DType::i64, {2});
    static_cast<int64_t*>(i.data())[1] = 49407;
    EXPECT_FLOAT_EQ(i.to_f32().f32()[1], 49407.0f);
}

TEST(Tensor, ReshapeChecksElementCount) {
    Tensor t = Tensor::zeros_f32({2, 3});
    EXPECT_EQ(t.reshaped({3, 2}).shape(), (Shape{3, 2}));
    EXPECT_THROW(t.reshaped({4, 2}), Error);
    EXPECT_THROW(Tensor::zeros(DType::i32, {2}).f32(), Error);
}
