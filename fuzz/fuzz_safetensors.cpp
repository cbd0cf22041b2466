// safetensors checkpoints as `mclip convert` reads them: format detection by content, then the
// header and every tensor widened to float32.
#include "fuzz_support.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace {

void safetensors(std::span<const uint8_t> bytes) {
    static mclip::fuzz::ScratchFile scratch(".safetensors");
    const auto& path = scratch.write(bytes);
    mclip::fuzz::expect_clean([&] {
        const auto file = mclip::read_safetensors(path);
        for (const auto& [name, tensor] : file.tensors) (void)tensor.to_f32();
    });
    mclip::fuzz::expect_clean([&] { (void)mclip::read_checkpoint(path); });
}

}  // namespace

MCLIP_FUZZ_TARGET(safetensors)
