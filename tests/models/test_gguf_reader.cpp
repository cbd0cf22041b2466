// mclip's model files are valid GGUF for an independent reader: @huggingface/gguf (npm, installed
// by scripts/install-deps.sh into tests/gguf_reader) must read every key and tensor header, and
// see the same values mclip's own reader does.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "support/fixtures.h"

using namespace mclip;
namespace fs = std::filesystem;

namespace {

fs::path reader_dir() { return fs::path(MCLIP_TEST_SOURCE_DIR) / "gguf_reader"; }

void expect_same_as_independent_reader(const fs::path& model) {
    const auto r = mclip::testing::run_command("node " + (reader_dir() / "read_gguf.mjs").string() + " " +
                                               mclip::testing::shell_quote(model.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto doc = nlohmann::json::parse(r.out);
    const GgufFile file = GgufFile::open(model);

    const auto& metadata = doc.at("metadata");
    EXPECT_EQ(metadata.at("tensor_count").get<size_t>(), file.tensors().size());
    EXPECT_EQ(metadata.at("kv_count").get<size_t>(), file.metadata().size());
    for (const auto& [key, value] : file.metadata()) {
        ASSERT_TRUE(metadata.contains(key)) << "the independent reader did not see " << key;
        const auto& theirs = metadata.at(key);
        if (value.type == GgufType::array) {
            EXPECT_EQ(theirs.at("length").get<size_t>(), value.value.size()) << key;
            for (size_t i = 0; i < theirs.at("first").size(); ++i) {
                if (value.value[i].is_number_float()) {
                    EXPECT_FLOAT_EQ(theirs["first"][i].get<float>(), value.value[i].get<float>()) << key;
                } else {
                    EXPECT_EQ(theirs["first"][i], value.value[i]) << key;
                }
            }
        } else if (value.value.is_number_float()) {
            EXPECT_FLOAT_EQ(theirs.get<float>(), value.value.get<float>()) << key;
        } else {
            EXPECT_EQ(theirs, value.value) << key;
        }
    }
    const auto& tensors = doc.at("tensors");
    ASSERT_EQ(tensors.size(), file.tensors().size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& info = file.tensors()[i];
        EXPECT_EQ(tensors[i].at("name"), info.name);
        Shape ne(info.shape.rbegin(), info.shape.rend());  // GGUF lists dimensions innermost first
        EXPECT_EQ(tensors[i].at("shape").get<Shape>(), ne) << info.name;
        EXPECT_EQ(tensors[i].at("dtype").get<uint32_t>(), static_cast<uint32_t>(info.type)) << info.name;
        EXPECT_EQ(tensors[i].at("offset").get<uint64_t>(), info.offset) << info.name;
    }
}

bool reader_available() {
    return fs::exists(reader_dir() / "node_modules" / "@huggingface" / "gguf") &&
           mclip::testing::run_command("node --version").exit_code == 0;
}

#define REQUIRE_READER()                                                                                   \
    do {                                                                                                   \
        if (!reader_available()) {                                                                         \
            if (mclip::testing::running_under_ci()) FAIL() << "@huggingface/gguf not installed (install-deps.sh)"; \
            GTEST_SKIP() << "@huggingface/gguf not installed; run scripts/install-deps.sh";                \
        }                                                                                                  \
    } while (0)

TEST(IndependentGgufReader, ReadsEveryFloat32ModelFile) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    REQUIRE_READER();
    for (const char* model : {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"}) {
        SCOPED_TRACE(model);
        expect_same_as_independent_reader(mclip::testing::test_models_dir() / (std::string(model) + ".gguf"));
    }
}

TEST(IndependentGgufReader, ReadsNarrowStorageFiles) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    REQUIRE_READER();
    const fs::path dir = mclip::testing::make_temp_dir("mclip-gguf-reader");
    for (const char* dtype : {"f16", "bf16", "q8"}) {
        SCOPED_TRACE(dtype);
        const fs::path out = dir / (std::string(dtype) + ".gguf");
        const auto r = mclip::testing::run_command(mclip::testing::shell_quote(mclip::testing::mclip_executable().string()) +
                                                   " convert --arch mobileclip_s0 --dtype " + dtype + " --in " +
                                                   (mclip::testing::test_models_dir() / "mobileclip_s0.safetensors").string() +
                                                   " --out " + out.string());
        ASSERT_EQ(r.exit_code, 0) << r.err;
        expect_same_as_independent_reader(out);
    }
    fs::remove_all(dir);
}

}  // namespace
