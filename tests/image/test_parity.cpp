// The reference's preprocessed images (`image.input` of every fixture model) reproduced from the
// image files named in the fixture's metadata, and the same through `mclip preprocess`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "mclip/image.h"
#include "mclip/preprocess.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "support/fixtures.h"

namespace mclip {
namespace {

using testing::mclip_executable;
using testing::run_command;
using testing::shell_quote;

const char* const kModels[] = {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"};

struct Difference {
    float max_abs = 0;
    int64_t differing = 0;
};

Difference compare(const float* ours, const float* reference, int64_t count) {
    Difference d;
    for (int64_t i = 0; i < count; ++i) {
        const float diff = std::fabs(ours[i] - reference[i]);
        d.max_abs = std::max(d.max_abs, diff);
        d.differing += diff != 0.0f;
    }
    return d;
}

std::vector<std::string> image_names(const SafetensorsFile& file, const std::string& where) {
    const auto it = file.metadata.find("images");
    if (it == file.metadata.end()) {
        ADD_FAILURE() << where << ": no 'images' in the metadata";
        return {};
    }
    return nlohmann::json::parse(it->second).get<std::vector<std::string>>();
}

TEST(ImageParity, ReferenceInputsAreReproducedBitForBit) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    DecodeOptions decode;
    decode.apply_exif_orientation = false;  // the reference (PIL's Image.open) ignores it
    for (const char* model : kModels) {
        const auto path = fixtures / model / "expected.safetensors";
        const SafetensorsFile file = read_safetensors(path);
        const Tensor& expected = file.tensors.at("image.input");
        const auto names = image_names(file, path.string());
        ASSERT_EQ(expected.rank(), 4u);
        ASSERT_EQ(expected.dim(0), static_cast<int64_t>(names.size()));
        const int size = static_cast<int>(expected.dim(2));
        Preprocessor preprocessor(PreprocessParams{.size = size});
        const int64_t per_image = 3 * int64_t{size} * size;
        std::vector<float> ours(per_image);
        for (size_t i = 0; i < names.size(); ++i) {
            const Image image = decode_image_file(fixtures / "images" / names[i], decode);
            preprocessor.run(image, ours.data());
            const Difference d = compare(ours.data(), expected.f32() + per_image * i, per_image);
            std::printf("[ parity   ] %s %s (%dx%d -> %d): max |diff| %.9g (%.3f/255), %lld of %lld values differ\n", model,
                        names[i].c_str(), image.width, image.height, size, d.max_abs, d.max_abs * 255.0,
                        static_cast<long long>(d.differing), static_cast<long long>(per_image));
            EXPECT_EQ(d.differing, 0) << model << " " << names[i] << ": max |diff| " << d.max_abs;
        }
    }
}

TEST(ImageParity, PreprocessCommandWritesTheReferenceTensor) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const SafetensorsFile file = read_safetensors(fixtures / "mobileclip_s0" / "expected.safetensors");
    const Tensor& expected = file.tensors.at("image.input");
    const auto names = image_names(file, "mobileclip_s0");
    const auto dir = testing::make_temp_dir("mclip-preprocess");
    const auto out = dir / "images.npy";
    std::string command = shell_quote(mclip_executable().string()) + " preprocess --size 256 --no-exif --out " + shell_quote(out.string());
    for (const auto& name : names) command += " " + shell_quote((fixtures / "images" / name).string());
    const auto result = run_command(command);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const Tensor ours = read_npy(out);
    ASSERT_EQ(ours.shape(), expected.shape());
    const Difference d = compare(ours.f32(), expected.f32(), expected.elements());
    EXPECT_EQ(d.differing, 0) << "max |diff| " << d.max_abs;
    std::filesystem::remove_all(dir);
}

TEST(ImageParity, PreprocessCommandRefusesBadInputWithTheFileAndReason) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const auto dir = testing::make_temp_dir("mclip-preprocess");
    const auto out = dir / "x.npy";
    const auto truncated = fixtures / "images" / "truncated.jpg";
    const auto result = run_command(shell_quote(mclip_executable().string()) + " preprocess " + shell_quote(truncated.string()) +
                                    " --out " + shell_quote(out.string()));
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.err.find(truncated.string()), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("truncated"), std::string::npos) << result.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << "no output may be written for bad input";

    const auto empty = dir / "empty.png";
    std::fclose(std::fopen(empty.c_str(), "wb"));
    const auto empty_result = run_command(shell_quote(mclip_executable().string()) + " preprocess " +
                                          shell_quote(empty.string()) + " --out " + shell_quote(out.string()));
    EXPECT_NE(empty_result.exit_code, 0);
    EXPECT_NE(empty_result.err.find("empty.png: empty file"), std::string::npos) << empty_result.err;
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mclip
