// mclip::Model::load of a registered name, through the public API, against a local server laid out
// like Hugging Face: the download it starts reports its progress to the caller's callback. Nothing
// here contacts any address but 127.0.0.1.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "download/hub_test_server.h"
#include "io/model_registry.h"
#include "mclip/mclip.h"
#include "support/fixtures.h"

namespace fs = std::filesystem;

namespace {

using mclip::testing::ScopedEnv;

// The server sends bytes that are not the checkpoint mclip pins, and announces no digest: they are
// transferred (with progress) and refused once their SHA-256 is known, so the test needs no real
// checkpoint and the load must end in an error that names the pin.
TEST(ModelLoadByName, ReportsTheDownloadToTheCallersProgressCallback) {
    const fs::path cache = mclip::testing::make_temp_dir("mclip-load-by-name");
    const mclip::RegisteredModel& registered = *mclip::find_registered_model("mobileclip-s0");
    ASSERT_FALSE(registered.checkpoint.sha256.empty()) << "the test needs a pinned checkpoint";
    const std::string content(3 << 20, 'x');
    {
        mclip::testing::HubTestServer server;
        server.add(registered.checkpoint.repo, registered.checkpoint.path, {content, "", "", 0});
        const ScopedEnv endpoint("HF_ENDPOINT", server.endpoint().c_str());
        const ScopedEnv cache_dir("MCLIP_CACHE", cache.c_str());
        const ScopedEnv no_token("HF_TOKEN", nullptr);

        std::vector<mclip::DownloadProgress> seen;
        mclip::ModelParams params = mclip::model_default_params();
        params.on_download_progress = [&](const mclip::DownloadProgress& p) { seen.push_back(p); };
        try {
            mclip::Model::load("mobileclip-s0", params);
            ADD_FAILURE() << "bytes that are not the pinned checkpoint were accepted";
        } catch (const mclip::Error& e) {
            EXPECT_NE(std::string(e.what()).find(registered.checkpoint.sha256.substr(0, 12)), std::string::npos) << e.what();
        }
        ASSERT_FALSE(seen.empty()) << "Model::load never called on_download_progress";
        for (const auto& p : seen) {
            EXPECT_NE(p.file.find(registered.checkpoint.path), std::string::npos) << p.file;
            EXPECT_LE(p.bytes, content.size());
        }
        EXPECT_EQ(seen.back().bytes, content.size());
        EXPECT_EQ(seen.back().total, content.size());
        for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].bytes, seen[i - 1].bytes);
    }
    // The refused bytes are gone: nothing but the lock files stays in the cache.
    for (const auto& entry : fs::recursive_directory_iterator(cache)) {
        if (entry.is_regular_file()) {
            EXPECT_EQ(entry.path().extension(), ".lock") << entry.path();
        }
    }
    fs::remove_all(cache);
}

}  // namespace
