// A full-size MobileCLIP-S0 checkpoint in PyTorch's zip format (as torch.save writes a
// state_dict: an OrderedDict of _rebuild_tensor_v2 calls over per-tensor storages), built from
// the fixture weights, converts with `mclip convert` and keeps float32 parity with the reference.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io/torch_archive_builder.h"
#include "models/fixture_weights.h"
#include "models/model.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;
namespace fs = std::filesystem;

namespace {

std::vector<int64_t> contiguous_strides(const Shape& shape) {
    std::vector<int64_t> strides(shape.size());
    int64_t step = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        strides[i] = step;
        step *= shape[i];
    }
    return strides;
}

void write_state_dict_pt(const fs::path& path, const TensorMap& tensors, const std::string& nest_under = "") {
    mclip::testing::PickleWriter pickle;
    pickle.proto(2);
    if (!nest_under.empty()) {
        pickle.empty_dict().mark().text("epoch").integer(32).text(nest_under);
    }
    pickle.ordered_dict().mark();
    std::vector<mclip::testing::ArchiveRecord> storages;
    int key = 0;
    for (const auto& [name, tensor] : tensors) {
        const std::string storage_type = tensor.dtype() == DType::i64 ? "LongStorage" : "FloatStorage";
        const std::string storage_key = std::to_string(key++);
        pickle.text(name).tensor(storage_type, storage_key, tensor.elements(), 0, tensor.shape(), contiguous_strides(tensor.shape()));
        storages.push_back({storage_key, std::string(static_cast<const char*>(tensor.data()), tensor.bytes())});
    }
    pickle.setitems();
    if (!nest_under.empty()) pickle.setitems();
    pickle.stop();
    mclip::testing::write_torch_archive(path, pickle.bytes(), storages);
}

TEST(PytorchCheckpointConversion, FullSizeS0KeepsParity) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = mclip::testing::make_temp_dir("mclip-pt-convert");
    const TensorMap checkpoint = mclip::testing::generate_fixture_checkpoint(fixtures / "mobileclip_s0" / "weights.json");
    // The name says nothing: the converter detects the format by content. Nested like a training
    // checkpoint, {"epoch": 32, "state_dict": {...}}, so the state dict is found by detection.
    write_state_dict_pt(dir / "mobileclip_s0.bin", checkpoint, "state_dict");
    const auto r = mclip::testing::run_command(mclip::testing::shell_quote(mclip::testing::mclip_executable().string()) +
                                               " convert --arch mobileclip_s0 --in " + (dir / "mobileclip_s0.bin").string() +
                                               " --out " + (dir / "s0.gguf").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;

    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    auto model = ClipModel::load(dir / "s0.gguf");
    const double image_error =
        mclip::testing::max_relative_error(model->encode_images(expected.tensors.at("image.input")), expected.tensors.at("image.embedding"));
    const Tensor& tokens = expected.tensors.at("text.tokens");
    const std::vector<int32_t> ids = mclip::testing::tokens_as_int32(tokens);
    const double text_error = mclip::testing::max_relative_error(model->encode_tokens(ids.data(), static_cast<int>(tokens.dim(0))),
                                                                 expected.tensors.at("text.embedding"));
    std::printf("converted from .pt: image rel err %.3g, text rel err %.3g\n", image_error, text_error);
    EXPECT_LE(image_error, 1e-4);
    EXPECT_LE(text_error, 1e-4);
    fs::remove_all(dir);
}

}  // namespace
