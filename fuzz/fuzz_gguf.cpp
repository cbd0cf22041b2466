// GGUF model files as `mclip info`, `tokenize --model` and model loading read them: the header,
// the metadata and tensor tables, the model-file keys, the embedded tokenizer and calibration,
// and every tensor converted to float32; then the report `mclip info` prints.
#include "fuzz_support.h"
#include "io/gguf.h"
#include "models/calibration.h"
#include "models/model_file.h"
#include "mclip/model_file.h"

namespace {

void gguf(std::span<const uint8_t> bytes) {
    static mclip::fuzz::ScratchFile scratch(".gguf");
    const auto& path = scratch.write(bytes);
    mclip::fuzz::expect_clean([&] {
        const auto file = mclip::GgufFile::open(path);
        for (const auto& tensor : file.tensors()) (void)file.tensor_f32(tensor.name);
        mclip::fuzz::expect_clean([&] { (void)mclip::model_file_config(file); });
        mclip::fuzz::expect_clean([&] { (void)mclip::read_calibration(file); });
        (void)mclip::load_tokenizer(file);
    });
    mclip::fuzz::expect_clean([&] { (void)mclip::inspect_model_file(path); });
}

}  // namespace

MCLIP_FUZZ_TARGET(gguf)
