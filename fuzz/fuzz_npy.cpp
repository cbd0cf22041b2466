// .npy arrays as `mclip embed --image-npy / --tokens-npy` read them.
#include "fuzz_support.h"
#include "io/npy.h"

namespace {

void npy(std::span<const uint8_t> bytes) {
    mclip::fuzz::expect_clean([&] {
        const mclip::Tensor tensor = mclip::parse_npy(std::as_bytes(bytes), "input.npy");
        (void)tensor.to_f32();
    });
}

}  // namespace

MCLIP_FUZZ_TARGET(npy)
