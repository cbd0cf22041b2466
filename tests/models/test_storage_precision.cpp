// Model files stored in f16, bf16 and q8 (issue bounds: rel. error ≤ 1e-2 for f16/bf16, ≤ 3e-2
// for q8, and the zero-shot top-1 of every fixture image unchanged).
#include <gtest/gtest.h>

#include <cstdio>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "models/parity.h"
#include "support/fixtures.h"

using namespace mclip;
namespace fs = std::filesystem;

namespace {

struct PrecisionCase {
    std::string dtype;
    double bound;
    std::string tensor_type;  // the ggml type the big weights must be stored as
};

class StoragePrecision : public ::testing::TestWithParam<PrecisionCase> {};

std::vector<int> top1(const Tensor& images, const Tensor& texts, float scale) {
    Tensor a = images.clone(), b = texts.clone();
    normalize_rows(a);
    normalize_rows(b);
    std::vector<int> best;
    const int64_t d = a.dim(1);
    for (int64_t i = 0; i < a.dim(0); ++i) {
        int arg = 0;
        double top = -1e30;
        for (int64_t j = 0; j < b.dim(0); ++j) {
            double dot = 0;
            for (int64_t k = 0; k < d; ++k) dot += a.f32()[i * d + k] * b.f32()[j * d + k];
            if (scale * dot > top) {
                top = scale * dot;
                arg = static_cast<int>(j);
            }
        }
        best.push_back(arg);
    }
    return best;
}

TEST_P(StoragePrecision, S0StaysWithinTheBound) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const PrecisionCase& c = GetParam();
    const fs::path checkpoint = mclip::testing::test_models_dir() / "mobileclip_s0.safetensors";
    ASSERT_TRUE(fs::exists(checkpoint)) << "run the make_fixture_models set-up first";
    const fs::path dir = mclip::testing::make_temp_dir("mclip-precision");
    const fs::path out = dir / ("s0_" + c.dtype + ".gguf");
    const auto r = mclip::testing::run_command(mclip::testing::shell_quote(mclip::testing::mclip_executable().string()) +
                                               " convert --arch mobileclip_s0 --dtype " + c.dtype + " --in " +
                                               checkpoint.string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;

    const GgufFile file = GgufFile::open(out);
    // Big matrices and 1×1 kernels are stored narrow; biases and norms stay float32.
    for (const char* name : {"txt.token_embedding", "txt.transformer.2.pre_norm_mha.1.qkv_proj.weight",
                             "img.network.4.0.ffn.fc1.weight", "img.network.7.1.qkv.weight", "img.head.proj"}) {
        ASSERT_NE(file.find_tensor(name), nullptr) << name;
        EXPECT_EQ(to_string(file.find_tensor(name)->type), c.tensor_type) << name;
    }
    for (const char* name : {"img.network.4.0.ffn.fc1.bias", "txt.final_layer_norm.weight", "img.patch_embed.0.weight"}) {
        EXPECT_EQ(to_string(file.find_tensor(name)->type), std::string("F32")) << name;
    }
    const uint64_t f32_size = fs::file_size(mclip::testing::test_models_dir() / "mobileclip_s0.gguf");
    std::printf("mobileclip_s0 %s: %.1f MiB (f32 %.1f MiB)\n", c.dtype.c_str(), fs::file_size(out) / 1048576.0, f32_size / 1048576.0);
    EXPECT_LT(fs::file_size(out), f32_size * (c.dtype == "q8" ? 0.3 : 0.55));

    const SafetensorsFile expected = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    auto model = ClipModel::load(out);
    const Tensor images = model->encode_images(expected.tensors.at("image.input"));
    const Tensor& tokens = expected.tensors.at("text.tokens");
    const std::vector<int32_t> ids = mclip::testing::tokens_as_int32(tokens);
    const Tensor texts = model->encode_tokens(ids.data(), static_cast<int>(tokens.dim(0)));
    const double image_error = mclip::testing::max_relative_error(images, expected.tensors.at("image.embedding"));
    const double text_error = mclip::testing::max_relative_error(texts, expected.tensors.at("text.embedding"));
    std::printf("mobileclip_s0 %s: image rel err %.3g, text rel err %.3g\n", c.dtype.c_str(), image_error, text_error);
    EXPECT_LE(image_error, c.bound);
    EXPECT_LE(text_error, c.bound);

    // Zero-shot top-1 of every fixture image over the fixture prompts, against the reference logits.
    const Tensor& logits = expected.tensors.at("logits");
    const auto ours = top1(images, texts, model->logit_scale());
    for (int64_t i = 0; i < logits.dim(0); ++i) {
        int arg = 0;
        for (int64_t j = 1; j < logits.dim(1); ++j) {
            if (logits.f32()[i * logits.dim(1) + j] > logits.f32()[i * logits.dim(1) + arg]) arg = static_cast<int>(j);
        }
        EXPECT_EQ(ours[i], arg) << "image " << i;
    }
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, StoragePrecision,
                         ::testing::Values(PrecisionCase{"f16", 1e-2, "F16"}, PrecisionCase{"bf16", 1e-2, "BF16"},
                                           PrecisionCase{"q8", 3e-2, "Q8_0"}),
                         [](const auto& info) { return info.param.dtype; });

}  // namespace
