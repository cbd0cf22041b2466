// `mclip download` and the hub fetcher under it, against a local server laid out like Hugging Face.
// Nothing here contacts any address but 127.0.0.1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "download/hub_test_server.h"
#include "io/download.h"
#include "io/model_registry.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "models/config.h"
#include "models/fixture_weights.h"
#include "models/model_store.h"
#include "support/fixtures.h"
#include "tokenizer/vocabulary_files.h"

namespace fs = std::filesystem;
using mclip::testing::HubTestServer;
using mclip::testing::ScopedEnv;
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

// The files a fetch left in a folder, the lock file aside (it stays by design, empty).
std::vector<std::string> files_in(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::recursive_directory_iterator(dir, error)) {
        if (entry.is_regular_file() && entry.path().extension() != ".lock") names.push_back(entry.path().string());
    }
    return names;
}

// Appends the UTF-8 encoding of a code point below U+0800 (all the byte symbols need).
void append_utf8(std::string& out, unsigned code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

// Hugging Face's CLIP vocabulary pair, rebuilt here from CLIP's own merges list the way it was
// written for OpenAI's repositories: vocab.json is the compact JSON object of CLIP's encoder (byte
// symbols, the same with "</w>", one symbol per merge, the two special tokens) in id order,
// non-ASCII characters left as they are; merges.txt is the merges under a tokenizers header.
struct HuggingFaceVocabulary {
    std::string vocab_json;
    std::string merges_txt;
};

HuggingFaceVocabulary hugging_face_vocabulary(const fs::path& merges_list) {
    const std::vector<std::string> merges = mclip::clip_text::read_merges_file(merges_list);
    // CLIP's byte symbols: the printable Latin-1 bytes stand for themselves, in byte order; the
    // other bytes follow, taking the code points from 256 on.
    const auto stands_for_itself = [](unsigned b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
    std::vector<unsigned> symbols;
    for (unsigned b = 0; b < 256; ++b) {
        if (stands_for_itself(b)) symbols.push_back(b);
    }
    unsigned next = 256;
    for (unsigned b = 0; b < 256; ++b) {
        if (!stands_for_itself(b)) symbols.push_back(next++);
    }
    std::vector<std::string> tokens;
    for (unsigned code_point : symbols) append_utf8(tokens.emplace_back(), code_point);
    for (size_t i = 0, n = tokens.size(); i < n; ++i) tokens.push_back(tokens[i] + "</w>");
    for (const auto& merge : merges) tokens.push_back(merge.substr(0, merge.find(' ')) + merge.substr(merge.find(' ') + 1));
    tokens.push_back("<|startoftext|>");
    tokens.push_back("<|endoftext|>");

    HuggingFaceVocabulary files;
    files.vocab_json = "{";
    for (size_t id = 0; id < tokens.size(); ++id) {
        if (id > 0) files.vocab_json += ',';
        files.vocab_json += '"';
        for (char c : tokens[id]) {
            if (c == '"' || c == '\\') files.vocab_json += '\\';
            files.vocab_json += c;
        }
        files.vocab_json += "\":" + std::to_string(id);
    }
    files.vocab_json += "}";
    files.merges_txt = "#version: 0.2 - Trained by `huggingface/tokenizers`\n";
    for (const auto& merge : merges) files.merges_txt += merge + "\n";
    return files;
}

// Serves the vocabulary pair where the registry says it lives, as the hub serves plain Git files:
// no digest headers, their Git blob ids (SHA-1) as ETag, which the fetcher must not take for a
// SHA-256.
void serve_vocabulary(HubTestServer& server, const HuggingFaceVocabulary& vocabulary) {
    const auto& files = mclip::clip_vocabulary_files();
    server.add(files.vocab_json.repo, files.vocab_json.path,
               {vocabulary.vocab_json, "", "", 0, "182766ce89b439768edadda342519f33802f5364"});
    server.add(files.merges.repo, files.merges.path,
               {vocabulary.merges_txt, "", "", 0, "bbfec752c9a675946c6dce106def6f35c882dcc2"});
}

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

TEST_F(DownloadTest, ReportsProgressToTheCaller) {
    HubTestServer server;
    const std::string content = sample_content(300000, 2);
    server.add(kRepoFile.repo, kRepoFile.path, {content, sha256_of(content), "", 0});
    auto options = local_options(server);
    std::vector<mclip::DownloadProgress> seen;
    options.on_progress = [&](const mclip::DownloadProgress& p) { seen.push_back(p); };

    mclip::fetch_hub_file(kRepoFile, dir_ / "weights.bin", options);

    ASSERT_FALSE(seen.empty());
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].bytes, seen[i - 1].bytes);
    EXPECT_EQ(seen.back().file, kRepoFile.path);
    EXPECT_EQ(seen.back().bytes, content.size());
    EXPECT_EQ(seen.back().total, content.size());
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

TEST_F(DownloadTest, PinnedDigestVerifiesWhenTheServerAnnouncesNone) {
    HubTestServer server;
    const std::string content = sample_content(20000, 5);
    server.add(kRepoFile.repo, kRepoFile.path, {content, "", "", 0});

    mclip::HubFile known = kRepoFile;
    known.sha256 = sha256_of(content);
    const auto fetched = mclip::fetch_hub_file(known, dir_ / "good.bin", local_options(server));
    EXPECT_NE(fetched.checksum_source.find("mclip pins"), std::string::npos) << fetched.checksum_source;

    known.sha256 = sha256_of("something else");
    EXPECT_THROW(mclip::fetch_hub_file(known, dir_ / "bad.bin", local_options(server)), mclip::Error);
    EXPECT_FALSE(fs::exists(dir_ / "bad.bin"));
    EXPECT_FALSE(fs::exists(dir_ / "bad.bin.part"));

    const auto unverified = mclip::fetch_hub_file(kRepoFile, dir_ / "unverified.bin", local_options(server));
    EXPECT_EQ(unverified.checksum_source, "");
    EXPECT_EQ(slurp(dir_ / "unverified.bin"), content);
}

TEST_F(DownloadTest, PinnedFileAnnouncedWithAnotherDigestIsRefusedBeforeItsData) {
    // A hub whose redirect announces another file than the pinned one (a changed repository, or a
    // mirror serving other bytes): the bytes match what the server announces, not the pin.
    HubTestServer hub;
    HubTestServer cdn;
    const std::string offered = sample_content(60000, 12);
    cdn.add_at("/blobs/other", {offered, "", "", 0});
    hub.add(kRepoFile.repo, kRepoFile.path, {offered, sha256_of(offered), cdn.endpoint() + "/blobs/other", 0});
    mclip::HubFile pinned = kRepoFile;
    pinned.sha256 = sha256_of("the file mclip was written for");
    const fs::path cache = dir_ / "cache";
    const fs::path destination = cache / "weights.bin";
    fs::create_directories(cache);
    // Data an earlier run left behind goes too: it cannot be trusted to be the pinned file.
    std::ofstream(destination.string() + ".part", std::ios::binary) << offered.substr(0, 1000);

    try {
        mclip::fetch_hub_file(pinned, destination, local_options(hub));
        FAIL() << "a file announced with another digest than its pin was accepted";
    } catch (const mclip::Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(e.code(), mclip::ErrorCode::invalid_input);
        EXPECT_EQ(message.rfind(mclip::hub_file_url(local_options(hub), pinned) + ": ", 0), 0u) << message;
        EXPECT_NE(message.find("refused someone/some-model/weights.bin"), std::string::npos) << message;
        EXPECT_NE(message.find(pinned.sha256), std::string::npos) << message;
        EXPECT_NE(message.find(sha256_of(offered)), std::string::npos) << message;
        EXPECT_NE(message.find("X-Linked-Etag"), std::string::npos) << message;
    }
    EXPECT_EQ(files_in(cache), std::vector<std::string>{});
    EXPECT_EQ(hub.requests().size(), 1u);  // refused, not retried
    EXPECT_TRUE(cdn.requests().empty()) << "the data was requested although its digest was already known to be wrong";
}

TEST_F(DownloadTest, BytesThatDoNotMatchThePinAreRefusedWhateverTheServerSays) {
    // The server announces the pinned digest but sends other bytes.
    HubTestServer server;
    const std::string pinned_content = sample_content(70000, 13);
    std::string sent = pinned_content;
    sent[4321] ^= 0x20;
    server.add(kRepoFile.repo, kRepoFile.path, {sent, sha256_of(pinned_content), "", 0});
    mclip::HubFile pinned = kRepoFile;
    pinned.sha256 = sha256_of(pinned_content);
    const fs::path cache = dir_ / "cache";

    try {
        mclip::fetch_hub_file(pinned, cache / "weights.bin", local_options(server));
        FAIL() << "bytes that do not match the pin were accepted";
    } catch (const mclip::Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(e.code(), mclip::ErrorCode::invalid_input);
        EXPECT_NE(message.find("checksum mismatch"), std::string::npos) << message;
        EXPECT_NE(message.find("mclip pins for someone/some-model/weights.bin"), std::string::npos) << message;
        EXPECT_NE(message.find(sha256_of(pinned_content)), std::string::npos) << message;
        EXPECT_NE(message.find(sha256_of(sent)), std::string::npos) << message;
    }
    EXPECT_EQ(files_in(cache), std::vector<std::string>{});

    // The same with no digest announced at all, resuming a .part an earlier run left: the whole
    // file, the kept part included, is checked against the pin.
    HubTestServer quiet;
    quiet.add(kRepoFile.repo, kRepoFile.path, {sent, "", "", 0});
    std::ofstream(cache / "weights.bin.part", std::ios::binary) << sent.substr(0, 30000);
    EXPECT_THROW(mclip::fetch_hub_file(pinned, cache / "weights.bin", local_options(quiet)), mclip::Error);
    ASSERT_EQ(quiet.requests().size(), 1u);
    EXPECT_EQ(quiet.requests()[0].range, "bytes=30000-");
    EXPECT_EQ(files_in(cache), std::vector<std::string>{});
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
    const fs::path vocabulary_dir = dir_ / "hub/openai/clip-vit-base-patch32/main";
    for (const std::string url : {"/apple/MobileCLIP-S0/resolve/main/mobileclip_s0.pt",
                                  "/openai/clip-vit-base-patch32/resolve/main/vocab.json",
                                  "/openai/clip-vit-base-patch32/resolve/main/merges.txt"}) {
        EXPECT_NE(err.find(endpoint + url), std::string::npos) << url << "\n" << err;
    }
    EXPECT_NE(err.find("could not connect"), std::string::npos) << err;
    EXPECT_NE(err.find((dir_ / "hub/apple/MobileCLIP-S0/main/mobileclip_s0.pt").string()), std::string::npos) << err;
    EXPECT_NE(err.find((vocabulary_dir / "vocab.json").string()), std::string::npos) << err;
    EXPECT_NE(err.find((vocabulary_dir / "merges.txt").string()), std::string::npos) << err;
    // Every file to place by hand comes with the digest mclip will accept.
    EXPECT_NE(err.find(mclip::find_registered_model("mobileclip-s0")->checkpoint.sha256), std::string::npos) << err;
    EXPECT_NE(err.find(mclip::clip_vocabulary_files().vocab_json.sha256), std::string::npos) << err;
    EXPECT_NE(err.find(mclip::clip_vocabulary_files().merges.sha256), std::string::npos) << err;
    EXPECT_NE(err.find("mclip convert --arch mobileclip_s0"), std::string::npos) << err;
    EXPECT_NE(err.find("--vocab '" + (vocabulary_dir / "vocab.json").string() + "'"), std::string::npos) << err;
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

TEST_F(DownloadTest, CommandRefusesACheckpointAnnouncedWithAnotherDigestThanItsPin) {
    // A mirror serving some other mobileclip_s0.pt, announced with that file's own digest.
    HubTestServer server;
    const mclip::RegisteredModel& model = *mclip::find_registered_model("mobileclip-s0");
    const std::string other = sample_content(1 << 20, 14);
    server.add(model.checkpoint.repo, model.checkpoint.path, {other, sha256_of(other), "", 0});

    const auto result = run_command(mclip_command() + " download mobileclip-s0 --no-convert --endpoint " +
                                    server.endpoint() + " --cache-dir " + shell_quote(dir_.string()));
    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.err.find("refused apple/MobileCLIP-S0/mobileclip_s0.pt"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(model.checkpoint.sha256), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(sha256_of(other)), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(files_in(dir_ / "hub" / model.checkpoint.repo), std::vector<std::string>{});
}

TEST_F(DownloadTest, CommandHonoursHfEndpointAndEndpointOverridesIt) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);  // the pinned vocabulary is rebuilt from the fixture merges
    HubTestServer server;
    const mclip::RegisteredModel& model = *mclip::find_registered_model("mobileclip-s1");
    const std::string checkpoint = sample_content(3 << 20, 10);
    server.add(model.checkpoint.repo, model.checkpoint.path, {checkpoint, sha256_of(checkpoint), "", 0});
    serve_vocabulary(server, hugging_face_vocabulary(fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"));

    const auto via_env = run_command(mclip_command("HF_ENDPOINT=" + server.endpoint()) +
                                     " download mobileclip_s1 --no-convert --cache-dir " + shell_quote(dir_.string()));
    ASSERT_EQ(via_env.exit_code, 0) << via_env.err;
    const fs::path checkpoint_path = dir_ / "hub" / model.checkpoint.repo / "main" / model.checkpoint.path;
    const fs::path vocab_path = dir_ / "hub/openai/clip-vit-base-patch32/main/vocab.json";
    EXPECT_EQ(via_env.out, checkpoint_path.string() + "\n" + vocab_path.string() + "\n");
    EXPECT_EQ(slurp(checkpoint_path), checkpoint);
    // Not a terminal: no progress bar drawing (carriage returns, escape sequences) in the log.
    EXPECT_EQ(via_env.err.find('\r'), std::string::npos);
    EXPECT_EQ(via_env.err.find('\x1b'), std::string::npos);
    EXPECT_EQ(server.requests().size(), 3u);

    const std::string closed = "http://127.0.0.1:" + std::to_string(mclip::testing::closed_local_port());
    const auto overridden = run_command(mclip_command("HF_ENDPOINT=" + closed) + " download mobileclip-s1 --no-convert --force" +
                                        " --endpoint " + server.endpoint() + " --cache-dir " + shell_quote(dir_.string()));
    ASSERT_EQ(overridden.exit_code, 0) << overridden.err;
    EXPECT_EQ(server.requests().size(), 6u);
}

TEST_F(DownloadTest, OfficialVocabularyPairIsPinnedFetchedAndTokenizesLikeTheTrustedMerges) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path trusted = fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz";
    const HuggingFaceVocabulary vocabulary = hugging_face_vocabulary(trusted);
    // The pinned digests are those of OpenAI's files, and those files are exactly CLIP's merges
    // list written out as Hugging Face did: rebuilt from the trusted list, they hash to the pins.
    const auto& pinned = mclip::clip_vocabulary_files();
    EXPECT_EQ(pinned.vocab_json.repo, "openai/clip-vit-base-patch32");
    EXPECT_EQ(pinned.merges.repo, "openai/clip-vit-base-patch32");
    EXPECT_EQ(vocabulary.vocab_json.size(), 862328u);
    EXPECT_EQ(vocabulary.merges_txt.size(), 524657u);
    EXPECT_EQ(sha256_of(vocabulary.vocab_json), pinned.vocab_json.sha256);
    EXPECT_EQ(sha256_of(vocabulary.merges_txt), pinned.merges.sha256);

    HubTestServer server;
    const mclip::RegisteredModel& model = *mclip::find_registered_model("mobileclip-s2");
    const std::string checkpoint = sample_content(1 << 20, 15);
    server.add(model.checkpoint.repo, model.checkpoint.path, {checkpoint, sha256_of(checkpoint), "", 0});
    serve_vocabulary(server, vocabulary);
    const auto download = run_command(mclip_command() + " download mobileclip-s2 --no-convert --endpoint " +
                                      server.endpoint() + " --cache-dir " + shell_quote(dir_.string()));
    ASSERT_EQ(download.exit_code, 0) << download.err;
    const fs::path folder = dir_ / "hub/openai/clip-vit-base-patch32/main";
    EXPECT_EQ(slurp(folder / "vocab.json"), vocabulary.vocab_json);
    EXPECT_EQ(slurp(folder / "merges.txt"), vocabulary.merges_txt);
    EXPECT_NE(download.err.find("verified against the SHA-256 mclip pins for openai/clip-vit-base-patch32/vocab.json"),
              std::string::npos) << download.err;

    // The fetched pair, read as the tokenizer reads it, gives open_clip's ids for every golden case.
    const fs::path cases = fixtures / "tokenizer" / "cases.jsonl";
    const auto tokenized = run_command(mclip_command() + " tokenize --vocab " + shell_quote((folder / "vocab.json").string()) +
                                       " --jsonl < " + shell_quote(cases.string()));
    ASSERT_EQ(tokenized.exit_code, 0) << tokenized.err;
    std::ifstream expected_lines(cases);
    std::istringstream actual_lines(tokenized.out);
    std::string expected_line, actual_line;
    size_t compared = 0;
    while (std::getline(expected_lines, expected_line)) {
        if (expected_line.empty()) continue;
        ASSERT_TRUE(std::getline(actual_lines, actual_line)) << "no output for case " << compared;
        const auto expected = nlohmann::json::parse(expected_line);
        const auto actual = nlohmann::json::parse(actual_line);
        EXPECT_EQ(actual.at("ids"), expected.at("ids")) << expected.at("text");
        EXPECT_EQ(actual.at("context"), expected.at("context77")) << expected.at("text");
        ++compared;
    }
    EXPECT_GT(compared, 100u);
}

// Serves a fixture checkpoint (random weights, as safetensors) under a registered model's hub name
// with the official vocabulary pair, downloads and converts it through the API, and checks the
// model file with the command. The fixture is not the published file, so the registry entry is
// used with the fixture's digest pinned instead.
void download_and_convert(const fs::path& dir, const fs::path& weights_json, const std::string& name, const std::string& arch,
                          const fs::path& fixtures) {
    const fs::path checkpoint_file = dir / "fixture.safetensors";
    mclip::write_safetensors(checkpoint_file, mclip::testing::generate_fixture_checkpoint(weights_json));
    const std::string checkpoint = slurp(checkpoint_file);
    fs::remove(checkpoint_file);

    HubTestServer server;
    mclip::RegisteredModel model = *mclip::find_registered_model(name);
    model.checkpoint.sha256 = sha256_of(checkpoint);
    server.add(model.checkpoint.repo, model.checkpoint.path, {checkpoint, sha256_of(checkpoint), "", 0});
    serve_vocabulary(server, hugging_face_vocabulary(fixtures / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"));

    mclip::ModelDownloadOptions options;
    options.cache_dir = dir / "cache";
    options.hub = local_options(server);
    const mclip::DownloadedModel downloaded = mclip::download_model(model, options);
    const fs::path model_file = options.cache_dir / "models" / (arch + ".gguf");
    EXPECT_EQ(downloaded.model_file, model_file);
    EXPECT_EQ(downloaded.vocabulary, options.cache_dir / "hub/openai/clip-vit-base-patch32/main/vocab.json");
    ASSERT_TRUE(fs::exists(model_file));

    const auto info = run_command(mclip_command() + " info " + shell_quote(model_file.string()));
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find(arch), std::string::npos) << info.out;
    // The model file carries the tokenizer built from the fetched pair (golden ids from cases.jsonl).
    const auto tokens = run_command(mclip_command() + " tokenize --model " + shell_quote(model_file.string()) + " 'a photo of a cat'");
    ASSERT_EQ(tokens.exit_code, 0) << tokens.err;
    EXPECT_EQ(tokens.out, "49406 320 1125 539 320 2368 49407\n");
}

TEST_F(DownloadTest, DownloadsAndConvertsTheS0CheckpointWithTheOfficialVocabulary) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    download_and_convert(dir_, fixtures / "mobileclip_s0" / "weights.json", "mobileclip-s0", "mobileclip_s0", fixtures);
}

// An open_clip-layout model: open_clip's safetensors file from a timm repository.
TEST_F(DownloadTest, DownloadsAndConvertsAnOpenClipCheckpoint) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    download_and_convert(dir_, fixtures / "openai_vit_b_32" / "weights.json", "openai-vit-b-32", "openai_vit_b_32", fixtures);
}

}  // namespace
