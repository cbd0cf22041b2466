// `mclip download` and the hub fetcher under it, against a local server laid out like Hugging Face.
// Nothing here contacts any address but 127.0.0.1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "download/hub_test_server.h"
#include "io/download.h"
#include "io/model_registry.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "models/config.h"
#include "models/fixture_weights.h"
#include "support/fixtures.h"

namespace fs = std::filesystem;
using mclip::testing::HubTestServer;
using mclip::testing::run_command;
using mclip::testing::shell_quote;

namespace {

// Bytes that differ at every position a cut or an off-by-one could land on.
std::string sample_content(size_t size, unsigned seed) {
    std::string data(size, '\0');
    uint32_t state = seed * 2654435761u + 1;
    for (auto& c : data) {
        state = state * 1664525u + 1013904223u;
        c = static_cast<char>(state >> 24);
    }
    return data;
}

std::string sha256_of(const std::string& data) {
    return mclip::sha256_hex(std::span(reinterpret_cast<const std::byte*>(data.data()), data.size()));
}

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Sets (or unsets) an environment variable for one test and restores it afterwards.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value) setenv(name, value, 1);
        else unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_) setenv(name_, old_->c_str(), 1);
        else unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

mclip::HubOptions local_options(const HubTestServer& server) {
    mclip::HubOptions options;
    options.endpoint = server.endpoint();
    options.backoff = std::chrono::milliseconds(10);
    return options;
}

// The mclip command line with no hub settings inherited from the user's environment.
std::string mclip_command(const std::string& environment = "") {
    return "env -u HF_TOKEN -u HF_ENDPOINT -u MCLIP_CACHE " + environment + " " +
           shell_quote(mclip::testing::mclip_executable().string());
}

const mclip::HubFile kRepoFile{"someone/some-model", "weights.bin", ""};

class DownloadTest : public ::testing::Test {
protected:
    void SetUp() override { dir_ = mclip::testing::make_temp_dir("mclip-download"); }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(DownloadTest, FetchesAndVerifiesAgainstTheLinkedEtag) {
    HubTestServer server;
    const std::string content = sample_content(300000, 1);
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", 0});
    const fs::path destination = dir_ / "weights.bin";

    const auto fetched = mclip::fetch_hub_file(kRepoFile, destination, local_options(server));

    EXPECT_FALSE(fetched.from_cache);
    EXPECT_EQ(slurp(destination), content);
    EXPECT_EQ(fetched.sha256, sha256_of(content));
    EXPECT_NE(fetched.checksum_source.find("X-Linked-Etag"), std::string::npos) << fetched.checksum_source;
    EXPECT_FALSE(fs::exists(destination.string() + ".part"));
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].path, "/someone/some-model/resolve/main/weights.bin");
    EXPECT_EQ(requests[0].range, "");
    EXPECT_EQ(requests[0].authorization, "");
}

TEST_F(DownloadTest, ResumesWithARangeRequestAfterTheConnectionIsCut) {
    HubTestServer server;
    const std::string content = sample_content(500000, 2);
    const size_t cut = 200000;
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", cut});
    const fs::path destination = dir_ / "weights.bin";

    const auto fetched = mclip::fetch_hub_file(kRepoFile, destination, local_options(server));

    EXPECT_EQ(slurp(destination), content);
    EXPECT_EQ(fetched.sha256, sha256_of(content));
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].range, "");
    // The retry asks for the rest, from however many bytes arrived before the cut.
    ASSERT_EQ(requests[1].range.rfind("bytes=", 0), 0u) << requests[1].range;
    ASSERT_EQ(requests[1].range.back(), '-') << requests[1].range;
    const size_t resumed_at = std::stoul(requests[1].range.substr(6));
    EXPECT_GT(resumed_at, 0u);
    EXPECT_LE(resumed_at, cut);
}

TEST_F(DownloadTest, ResumesThePartFileOfAnEarlierRun) {
    HubTestServer server;
    const std::string content = sample_content(100000, 3);
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", 0});
    const fs::path destination = dir_ / "weights.bin";
    std::ofstream(destination.string() + ".part", std::ios::binary) << content.substr(0, 12345);

    mclip::fetch_hub_file(kRepoFile, destination, local_options(server));

    EXPECT_EQ(slurp(destination), content);
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].range, "bytes=12345-");
}

TEST_F(DownloadTest, CorruptedDataFailsTheChecksumAndIsDeleted) {
    HubTestServer server;
    const std::string content = sample_content(50000, 4);
    std::string corrupted = content;
    corrupted[31337] ^= 0x01;
    server.add(kRepoFile.repo, kRepoFile.path, {corrupted, sha256_of(content), "", 0});
    const fs::path destination = dir_ / "weights.bin";

    try {
        mclip::fetch_hub_file(kRepoFile, destination, local_options(server));
        FAIL() << "a corrupted download was accepted";
    } catch (const mclip::Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("checksum mismatch"), std::string::npos) << message;
        EXPECT_NE(message.find(sha256_of(content)), std::string::npos) << message;
        EXPECT_NE(message.find(sha256_of(corrupted)), std::string::npos) << message;
    }
    EXPECT_FALSE(fs::exists(destination));
    EXPECT_FALSE(fs::exists(destination.string() + ".part"));
}

TEST_F(DownloadTest, KnownDigestIsUsedWhenTheServerAnnouncesNone) {
    HubTestServer server;
    const std::string content = sample_content(20000, 5);
    server.add(kRepoFile.repo, kRepoFile.path, {content, "", "", 0});

    mclip::HubFile known = kRepoFile;
    known.sha256 = sha256_of(content);
    const auto fetched = mclip::fetch_hub_file(known, dir_ / "good.bin", local_options(server));
    EXPECT_NE(fetched.checksum_source.find("mclip knows"), std::string::npos) << fetched.checksum_source;

    known.sha256 = sha256_of("something else");
    EXPECT_THROW(mclip::fetch_hub_file(known, dir_ / "bad.bin", local_options(server)), mclip::Error);
    EXPECT_FALSE(fs::exists(dir_ / "bad.bin"));

    const auto unverified = mclip::fetch_hub_file(kRepoFile, dir_ / "unverified.bin", local_options(server));
    EXPECT_EQ(unverified.checksum_source, "");
    EXPECT_EQ(slurp(dir_ / "unverified.bin"), content);
}

TEST_F(DownloadTest, MissingFileReportsTheUrlAndTheStatus) {
    HubTestServer server;
    const fs::path destination = dir_ / "weights.bin";
    try {
        mclip::fetch_hub_file(kRepoFile, destination, local_options(server));
        FAIL() << "a 404 was not reported";
    } catch (const mclip::Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(e.code(), mclip::ErrorCode::network);
        EXPECT_EQ(message.rfind(server.endpoint() + "/someone/some-model/resolve/main/weights.bin: ", 0), 0u) << message;
        EXPECT_NE(message.find("HTTP 404"), std::string::npos) << message;
        EXPECT_NE(message.find("Entry not found"), std::string::npos) << message;
    }
    EXPECT_FALSE(fs::exists(destination));
    EXPECT_EQ(server.requests().size(), 1u);  // a 404 is final: no retries
}

TEST_F(DownloadTest, TokenGoesToTheEndpointButNotToTheRedirectTarget) {
    HubTestServer hub;
    HubTestServer cdn;
    const std::string content = sample_content(40000, 6);
    cdn.add_at("/blobs/abc", {content, "", "", 0});
    hub.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), cdn.endpoint() + "/blobs/abc", 0});
    const ScopedEnv token("HF_TOKEN", "hf_secret_value");
    mclip::HubOptions options = mclip::HubOptions::from_environment();
    options.endpoint = hub.endpoint();

    const auto fetched = mclip::fetch_hub_file(kRepoFile, dir_ / "weights.bin", options);

    EXPECT_EQ(slurp(dir_ / "weights.bin"), content);
    EXPECT_NE(fetched.checksum_source.find("X-Linked-Etag"), std::string::npos);
    ASSERT_EQ(hub.requests().size(), 1u);
    EXPECT_EQ(hub.requests()[0].authorization, "Bearer hf_secret_value");
    ASSERT_EQ(cdn.requests().size(), 1u);
    EXPECT_EQ(cdn.requests()[0].authorization, "");
}

TEST_F(DownloadTest, HfEndpointChoosesTheServer) {
    HubTestServer server;
    const std::string content = sample_content(1000, 7);
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", 0}, "v1.0");
    const ScopedEnv endpoint("HF_ENDPOINT", (server.endpoint() + "/").c_str());
    mclip::HubOptions options = mclip::HubOptions::from_environment();
    options.revision = "v1.0";

    EXPECT_EQ(mclip::hub_file_url(options, kRepoFile), server.endpoint() + "/someone/some-model/resolve/v1.0/weights.bin");
    mclip::fetch_hub_file(kRepoFile, dir_ / "weights.bin", options);
    EXPECT_EQ(slurp(dir_ / "weights.bin"), content);
}

TEST_F(DownloadTest, CachedFileIsUsedUnlessForced) {
    HubTestServer server;
    const std::string content = sample_content(5000, 8);
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", 0});
    const fs::path destination = dir_ / "weights.bin";
    std::ofstream(destination, std::ios::binary) << "placed by hand";

    auto options = local_options(server);
    EXPECT_TRUE(mclip::fetch_hub_file(kRepoFile, destination, options).from_cache);
    EXPECT_EQ(slurp(destination), "placed by hand");
    EXPECT_TRUE(server.requests().empty());

    options.force = true;
    EXPECT_FALSE(mclip::fetch_hub_file(kRepoFile, destination, options).from_cache);
    EXPECT_EQ(slurp(destination), content);
}

TEST_F(DownloadTest, TwoFetchesOfOneFileAtOnceTransferItOnce) {
    HubTestServer server;
    const std::string content = sample_content(2000000, 9);
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", 0});
    const fs::path destination = dir_ / "weights.bin";
    const auto options = local_options(server);

    std::optional<mclip::FetchedFile> first, second;
    std::thread a([&] { first = mclip::fetch_hub_file(kRepoFile, destination, options); });
    std::thread b([&] { second = mclip::fetch_hub_file(kRepoFile, destination, options); });
    a.join();
    b.join();

    ASSERT_TRUE(first && second);
    EXPECT_NE(first->from_cache, second->from_cache);
    EXPECT_EQ(slurp(destination), content);
    EXPECT_EQ(server.requests().size(), 1u);
}

TEST(DownloadPaths, CacheLayoutAndUrlEncoding) {
    mclip::HubOptions options;
    options.endpoint = "https://mirror.example/";
    options.revision = "refs/pr/1";
    const mclip::HubFile file{"apple/MobileCLIP-S0", "sub dir/model.pt", ""};
    EXPECT_EQ(mclip::hub_file_url(options, file),
              "https://mirror.example/apple/MobileCLIP-S0/resolve/refs%2Fpr%2F1/sub%20dir/model.pt");
    EXPECT_EQ(mclip::hub_cache_path("/cache", options, file), fs::path("/cache/hub/apple/MobileCLIP-S0/refs--pr--1/sub dir/model.pt"));

    options.revision = "..";
    EXPECT_THROW(mclip::hub_cache_path("/cache", options, file), mclip::Error);
    options.revision = "main";
    EXPECT_THROW(mclip::hub_cache_path("/cache", options, {"apple/../..", "x", ""}), mclip::Error);
}

TEST(DownloadPaths, DefaultCacheFolderFollowsTheEnvironment) {
    const ScopedEnv home("HOME", "/home/someone");
    {
        const ScopedEnv cache("MCLIP_CACHE", nullptr);
        const ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
        EXPECT_EQ(mclip::default_cache_dir(), fs::path("/home/someone/.cache/mclip"));
    }
    {
        const ScopedEnv cache("MCLIP_CACHE", nullptr);
        const ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
        EXPECT_EQ(mclip::default_cache_dir(), fs::path("/xdg/mclip"));
    }
    const ScopedEnv cache("MCLIP_CACHE", "/explicit");
    EXPECT_EQ(mclip::default_cache_dir(), fs::path("/explicit"));
}

TEST(ModelRegistry, NamesResolveToConvertibleArchitectures) {
    ASSERT_NE(mclip::find_registered_model("mobileclip_s0"), nullptr);
    EXPECT_EQ(mclip::find_registered_model("MobileCLIP-S0"), mclip::find_registered_model("mobileclip-s0"));
    EXPECT_EQ(mclip::find_registered_model("mobileclip-s0")->checkpoint.repo, "apple/MobileCLIP-S0");
    EXPECT_EQ(mclip::find_registered_model("mobileclip_blt")->arch, "mobileclip_b");
    EXPECT_EQ(mclip::find_registered_model("mobileclip-s9"), nullptr);
    for (const auto& model : mclip::registered_models()) {
        EXPECT_NO_THROW(mclip::model_config(model.arch)) << model.name;
        EXPECT_TRUE(model.checkpoint.sha256.empty() || model.checkpoint.sha256.size() == 64) << model.name;
    }
}

// --- the command, end to end ---

TEST_F(DownloadTest, OfflineCommandNamesTheUrlsAndTheManualSteps) {
    const std::string endpoint = "http://127.0.0.1:" + std::to_string(mclip::testing::closed_local_port());
    const auto result = run_command(mclip_command() + " download mobileclip-s0 --endpoint " + endpoint +
                                    " --cache-dir " + shell_quote(dir_.string()));
    EXPECT_NE(result.exit_code, 0);
    const std::string& err = result.err;
    EXPECT_NE(err.find(endpoint + "/apple/MobileCLIP-S0/resolve/main/mobileclip_s0.pt"), std::string::npos) << err;
    EXPECT_NE(err.find(endpoint + "/shilongz/FlashFace-SD1.5/resolve/main/bpe_simple_vocab_16e6.txt.gz"), std::string::npos) << err;
    EXPECT_NE(err.find("could not connect"), std::string::npos) << err;
    EXPECT_NE(err.find((dir_ / "hub/apple/MobileCLIP-S0/main/mobileclip_s0.pt").string()), std::string::npos) << err;
    EXPECT_NE(err.find((dir_ / "hub/shilongz/FlashFace-SD1.5/main/bpe_simple_vocab_16e6.txt.gz").string()), std::string::npos) << err;
    EXPECT_NE(err.find("mclip convert --arch mobileclip_s0"), std::string::npos) << err;
    EXPECT_EQ(result.out, "");
}

TEST_F(DownloadTest, CommandReportsA404WithItsUrl) {
    HubTestServer server;
    const auto result = run_command(mclip_command() + " download mobileclip-s2 --no-convert --endpoint " +
                                    server.endpoint() + " --cache-dir " + shell_quote(dir_.string()));
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.err.find(server.endpoint() + "/apple/MobileCLIP-S2/resolve/main/mobileclip_s2.pt"), std::string::npos)
        << result.err;
    EXPECT_NE(result.err.find("HTTP 404"), std::string::npos) << result.err;
}

TEST_F(DownloadTest, CommandHonoursHfEndpointAndEndpointOverridesIt) {
    HubTestServer server;
    const mclip::RegisteredModel& model = *mclip::find_registered_model("mobileclip-s1");
    const mclip::HubFile& vocab = mclip::clip_vocabulary_file();
    const std::string checkpoint = sample_content(3 << 20, 10);
    const std::string merges = sample_content(4096, 11);
    server.add(model.checkpoint.repo, model.checkpoint.path, {checkpoint, sha256_of(checkpoint), "", 0});
    // Stand-in bytes for the vocabulary with their own announced digest: the server's header
    // decides, and the registry's pinned digest for the real file only draws a warning.
    server.add(vocab.repo, vocab.path, {merges, sha256_of(merges), "", 0});

    const auto via_env = run_command(mclip_command("HF_ENDPOINT=" + server.endpoint()) +
                                     " download mobileclip_s1 --no-convert --cache-dir " + shell_quote(dir_.string()));
    ASSERT_EQ(via_env.exit_code, 0) << via_env.err;
    const fs::path checkpoint_path = dir_ / "hub" / model.checkpoint.repo / "main" / model.checkpoint.path;
    const fs::path vocab_path = dir_ / "hub" / vocab.repo / "main" / vocab.path;
    EXPECT_EQ(via_env.out, checkpoint_path.string() + "\n" + vocab_path.string() + "\n");
    EXPECT_EQ(slurp(checkpoint_path), checkpoint);
    EXPECT_EQ(slurp(vocab_path), merges);
    // Not a terminal: no progress bar drawing (carriage returns, escape sequences) in the log.
    EXPECT_EQ(via_env.err.find('\r'), std::string::npos);
    EXPECT_EQ(via_env.err.find('\x1b'), std::string::npos);
    EXPECT_EQ(server.requests().size(), 2u);

    const std::string closed = "http://127.0.0.1:" + std::to_string(mclip::testing::closed_local_port());
    const auto overridden = run_command(mclip_command("HF_ENDPOINT=" + closed) + " download mobileclip-s1 --no-convert --force" +
                                        " --endpoint " + server.endpoint() + " --cache-dir " + shell_quote(dir_.string()));
    ASSERT_EQ(overridden.exit_code, 0) << overridden.err;
    EXPECT_EQ(server.requests().size(), 4u);
}

TEST_F(DownloadTest, CommandDownloadsAndConvertsTheS0Checkpoint) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path checkpoint_file = dir_ / "fixture.safetensors";
    mclip::write_safetensors(checkpoint_file,
                             mclip::testing::generate_fixture_checkpoint(fixtures / "mobileclip_s0" / "weights.json"));
    const std::string checkpoint = slurp(checkpoint_file);
    const std::string vocabulary = slurp(fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz");
    fs::remove(checkpoint_file);

    HubTestServer server;
    const mclip::RegisteredModel& model = *mclip::find_registered_model("mobileclip-s0");
    const mclip::HubFile& vocab = mclip::clip_vocabulary_file();
    server.add(model.checkpoint.repo, model.checkpoint.path, {checkpoint, sha256_of(checkpoint), "", 0});
    server.add(vocab.repo, vocab.path, {vocabulary, sha256_of(vocabulary), "", 0});
    // The fixture vocabulary is the published file, so the registry's pinned digest applies to it.
    EXPECT_EQ(sha256_of(vocabulary), vocab.sha256);

    const fs::path cache = dir_ / "cache";
    const auto result = run_command(mclip_command() + " download mobileclip-s0 --endpoint " + server.endpoint() +
                                    " --cache-dir " + shell_quote(cache.string()));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const fs::path model_file = cache / "models" / "mobileclip_s0.gguf";
    EXPECT_EQ(result.out, model_file.string() + "\n");
    ASSERT_TRUE(fs::exists(model_file));

    const auto info = run_command(mclip_command() + " info " + shell_quote(model_file.string()));
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("mobileclip_s0"), std::string::npos) << info.out;
}

}  // namespace
