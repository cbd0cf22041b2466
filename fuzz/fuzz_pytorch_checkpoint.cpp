// PyTorch checkpoints (torch.save zip archives holding a pickle) as `mclip convert` reads them:
// format detection, the zip directory and records, the restricted unpickler, state dict
// selection and the strided copies out of storages.
#include "fuzz_support.h"
#include "io/checkpoint.h"
#include "io/pytorch_checkpoint.h"

namespace {

void pytorch_checkpoint(std::span<const uint8_t> bytes) {
    static mclip::fuzz::ScratchFile scratch(".pt");
    const auto& path = scratch.write(bytes);
    mclip::fuzz::expect_clean([&] { (void)mclip::read_checkpoint(path); });
    // The --key path selects a nested dict, which takes other branches of the selection.
    mclip::fuzz::expect_clean([&] { (void)mclip::read_pytorch_checkpoint(path, "state_dict"); });
}

}  // namespace

MCLIP_FUZZ_TARGET(pytorch_checkpoint)
