// Test set-up: rebuilds each fixture checkpoint from weights.json, writes it as safetensors and
// converts it with the real `mclip convert`, into the test-models folder. Later tests load these.
// Skips (exit 0 with a message) when the fixtures are absent outside CI; fails under CI.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/fixture_weights.h"
#include "support/fixtures.h"

namespace fs = std::filesystem;

int convert_fixtures(int argc, char** argv) {
    const auto fixtures = mclip::testing::fixtures_dir();
    if (!fixtures) {
        std::fprintf(stderr, "reference fixtures not found (set MCLIP_FIXTURES)%s\n",
                     mclip::testing::running_under_ci() ? "; required under CI" : "; skipping");
        return mclip::testing::running_under_ci() ? 1 : 0;
    }
    const fs::path out_dir = mclip::testing::test_models_dir();
    fs::create_directories(out_dir);
    // The test set-up converts the four MobileCLIP models; `make_fixture_models NAME` converts
    // the one fixture NAME (any architecture with a fixture folder, for benchmarks).
    std::vector<std::string> models = {"mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"};
    if (argc > 1) models = {argv[1]};
    const fs::path vocab = *fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz";
    for (const std::string& model : models) {
        const fs::path checkpoint = out_dir / (model + ".safetensors");
        const fs::path gguf = out_dir / (model + ".gguf");
        const fs::path weights = *fixtures / model / "weights.json";
        // Rebuild only when the weights spec or the converter changed since the last run.
        if (fs::exists(gguf) && fs::last_write_time(gguf) > fs::last_write_time(weights) &&
            fs::last_write_time(gguf) > fs::last_write_time(mclip::testing::mclip_executable())) {
            std::printf("%s: up to date\n", gguf.c_str());
            continue;
        }
        mclip::write_safetensors(checkpoint, mclip::testing::generate_fixture_checkpoint(weights), {{"model", model}});
        const std::string command = mclip::testing::shell_quote(mclip::testing::mclip_executable().string()) +
                                    " convert --arch " + model + " --in " + mclip::testing::shell_quote(checkpoint.string()) +
                                    " --out " + mclip::testing::shell_quote(gguf.string()) +
                                    " --vocab " + mclip::testing::shell_quote(vocab.string());
        const auto result = mclip::testing::run_command(command);
        if (result.exit_code != 0) {
            std::fprintf(stderr, "%s failed (%d): %s\n", command.c_str(), result.exit_code, result.err.c_str());
            return 1;
        }
        std::printf("%s: %s", gguf.c_str(), result.err.c_str());
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        std::fprintf(stderr, "usage: %s [FIXTURE]   (a folder name in the fixtures, e.g. mobileclip_s0; none: the four MobileCLIP models)\n", argv[0]);
        return 2;
    }
    try {
        return convert_fixtures(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
