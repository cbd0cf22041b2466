// `mclip live` end to end, with a model converted from the fixture weights and clips made by the
// ffmpeg tool from the fixture images at test time.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <thread>

#include <nlohmann/json.hpp>

#include "mclip/image.h"
#include "support/fixtures.h"
#include "video_test_util.h"

extern char** environ;

namespace {

using mclip::testing::count_frames;
using mclip::testing::decode_raw;
using mclip::testing::make_temp_dir;
using mclip::testing::run_command;
using mclip::testing::run_ffmpeg;
using mclip::testing::shell_quote;
using nlohmann::json;

const char* const kLabels = "cat,coffee,rocket,dog,car";

// Skips (fails under CI) when the model or the ffmpeg tool is missing.
#define REQUIRE_LIVE_PREREQUISITES(fixtures)                                                            \
    MCLIP_FIXTURES_OR_SKIP(fixtures);                                                                   \
    do {                                                                                                \
        const bool ready_ = std::filesystem::exists(model_path()) && !mclip::testing::find_tool("ffmpeg").empty(); \
        if (!ready_) {                                                                                  \
            if (mclip::testing::running_under_ci()) FAIL() << "the S0 test model or ffmpeg is missing";  \
            GTEST_SKIP() << "the S0 test model (make_fixture_models) or the ffmpeg tool is missing";     \
        }                                                                                               \
    } while (0)

std::filesystem::path model_path() { return mclip::testing::test_models_dir() / "mobileclip_s0.gguf"; }

class LiveCommand : public ::testing::Test {
protected:
    void SetUp() override { dir_ = make_temp_dir("mclip-live"); }
    void TearDown() override {
        if (!HasFailure()) std::filesystem::remove_all(dir_);
    }

    // The command line of `mclip live` (the text embedding cache kept inside the test's folder).
    std::string live(const std::string& options) const {
        return "MCLIP_CACHE=" + shell_quote((dir_ / "cache").string()) + " " + shell_quote(mclip::testing::mclip_executable().string()) +
               " live --model " + shell_quote(model_path().string()) + " --labels " + shell_quote(kLabels) + " " + options;
    }

    std::string classify(const std::string& options) const {
        return "MCLIP_CACHE=" + shell_quote((dir_ / "cache").string()) + " " + shell_quote(mclip::testing::mclip_executable().string()) +
               " classify --model " + shell_quote(model_path().string()) + " --labels " + shell_quote(kLabels) + " " + options;
    }

    // A clip whose every frame differs: a window sliding over a fixture photo.
    std::filesystem::path make_clip(const std::filesystem::path& fixtures, const std::string& name, int width, int height, int fps,
                                    int frames, const std::string& encoding) const {
        const auto path = dir_ / name;
        const std::string filter = "scale=" + std::to_string(2 * width) + ":" + std::to_string(2 * height) + ",crop=" +
                                   std::to_string(width) + ":" + std::to_string(height) + ":'mod(n*7," + std::to_string(width) +
                                   ")':'mod(n*3," + std::to_string(height) + ")',setsar=1";
        run_ffmpeg("-loop 1 -framerate " + std::to_string(fps) + " -i " + shell_quote((fixtures / "images" / "chelsea.png").string()) +
                   " -vf " + shell_quote(filter) + " -frames:v " + std::to_string(frames) + " " + encoding + " " +
                   shell_quote(path.string()));
        return path;
    }

    std::filesystem::path dir_;
};

std::vector<json> read_json_lines(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::vector<json> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(json::parse(line));  // throws on a cut-off line
    return lines;
}

std::vector<json> parse_json_lines(const std::string& text) {
    std::vector<json> lines;
    size_t start = 0;
    while (start < text.size()) {
        const size_t end = text.find('\n', start);
        const std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!line.empty()) lines.push_back(json::parse(line));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return lines;
}

json read_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    return json::parse(in);
}

std::string frame_png(int64_t index) {
    char name[32];
    std::snprintf(name, sizeof(name), "frame_%06lld.png", static_cast<long long>(index));
    return name;
}

// The frame's own answer must be classify's on the same pixels: same labels in the same order,
// the same probabilities and logits (the same arithmetic on the same input), the same decision.
void expect_same_answer(const json& live_line, const json& classify_line, const std::string& what) {
    const json& ours = live_line.at("top_k");
    const json& theirs = classify_line.at("top_k");
    ASSERT_EQ(ours.size(), theirs.size()) << what;
    for (size_t k = 0; k < ours.size(); ++k) {
        EXPECT_EQ(ours[k].at("label"), theirs[k].at("label")) << what << " rank " << k;
        EXPECT_NEAR(ours[k].at("probability").get<double>(), theirs[k].at("probability").get<double>(), 1e-6) << what << " rank " << k;
        EXPECT_NEAR(ours[k].at("logit").get<double>(), theirs[k].at("logit").get<double>(), 1e-5) << what << " rank " << k;
    }
    EXPECT_EQ(live_line.at("label"), classify_line.at("label")) << what;
}

double mean_abs_difference(const uint8_t* a, const uint8_t* b, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += std::abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
    return sum / static_cast<double>(n);
}

struct Encoding {
    std::string name;
    std::string file;
    int width, height;
    std::string options;
};

// Different codecs, containers, pixel formats (4:2:0 planar and semi-planar, full-range 4:2:2,
// 4:4:4 BT.709, RGB) and sizes, including odd ones.
TEST_F(LiveCommand, EveryFrameMatchesClassifyOnTheSameDecodedFrame) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const std::vector<Encoding> encodings = {
        {"h264 yuv420p", "a.mp4", 320, 240, "-c:v libx264 -pix_fmt yuv420p"},
        {"raw nv12", "b.nut", 334, 190, "-c:v rawvideo -pix_fmt nv12"},
        {"mjpeg yuvj422p", "c.avi", 256, 144, "-c:v mjpeg -pix_fmt yuvj422p -q:v 3"},
        {"h264 yuv444p bt709", "d.mkv", 301, 233, "-c:v libx264 -pix_fmt yuv444p -colorspace bt709"},
        {"raw rgb24", "e.nut", 200, 300, "-c:v rawvideo -pix_fmt rgb24"},
    };
    const int frames = 4;
    std::vector<std::filesystem::path> clips, dumps;
    std::vector<std::vector<json>> events;
    for (const auto& e : encodings) {
        SCOPED_TRACE(e.name);
        clips.push_back(make_clip(fixtures, e.file, e.width, e.height, 10, frames, e.options));
        dumps.push_back(dir_ / (e.file + "-frames"));
        const auto jsonl = dir_ / (e.file + ".jsonl");
        const auto stats = dir_ / (e.file + ".stats.json");
        const auto run = run_command(live("--source " + shell_quote(clips.back().string()) +
                                          " --every-frame --smooth 1 --hysteresis 0 --threshold 0.2 --dump-frames " +
                                          shell_quote(dumps.back().string()) + " --jsonl " + shell_quote(jsonl.string()) + " --stats " +
                                          shell_quote(stats.string())));
        ASSERT_EQ(run.exit_code, 0) << run.err;
        const json summary = read_json(stats);
        EXPECT_EQ(summary.at("frames_read"), frames);
        EXPECT_EQ(summary.at("frames_processed"), frames);
        EXPECT_EQ(summary.at("frames_dropped"), 0);
        events.push_back(read_json_lines(jsonl));
        ASSERT_EQ(events.back().size(), static_cast<size_t>(frames));
    }

    // One classify run over every dumped frame (its output follows the order of its inputs).
    std::string inputs;
    for (const auto& d : dumps) inputs += " " + shell_quote(d.string());
    const auto reference = run_command(classify("--top-k 3 --threshold 0.2 --jsonl" + inputs));
    ASSERT_EQ(reference.exit_code, 0) << reference.err;
    const auto answers = parse_json_lines(reference.out);
    ASSERT_EQ(answers.size(), encodings.size() * frames);
    for (size_t c = 0; c < encodings.size(); ++c) {
        const Encoding& e = encodings[c];
        SCOPED_TRACE(e.name);
        for (int i = 0; i < frames; ++i) {
            const json& answer = answers[c * frames + i];
            EXPECT_EQ(events[c][i].at("frame"), i);
            EXPECT_EQ(std::filesystem::path(answer.at("image").get<std::string>()), dumps[c] / frame_png(i));
            expect_same_answer(events[c][i], answer, e.name + " frame " + std::to_string(i));
        }

        // The dumped pixels are the clip's frames as FFmpeg itself decodes them (up to its chroma
        // interpolation), each at its own position in the clip.
        const auto decoded = decode_raw(clips[c], "rgb24", "-sws_flags bilinear+accurate_rnd+full_chroma_int");
        const size_t frame_bytes = static_cast<size_t>(e.width) * e.height * 3;
        ASSERT_EQ(decoded.size(), frame_bytes * frames);
        for (int i = 0; i < frames; ++i) {
            const mclip::Image dumped = mclip::decode_image_file(dumps[c] / frame_png(i));
            ASSERT_EQ(dumped.width, e.width);
            ASSERT_EQ(dumped.height, e.height);
            const double same = mean_abs_difference(dumped.rgb.data(), decoded.data() + frame_bytes * i, frame_bytes);
            EXPECT_LT(same, 1.5) << "frame " << i;
            const int other = i == 0 ? 1 : i - 1;
            EXPECT_GT(mean_abs_difference(dumped.rgb.data(), decoded.data() + frame_bytes * other, frame_bytes), same + 3.0) << "frame " << i;
        }
    }
}

TEST_F(LiveCommand, FolderOfImagesMatchesClassify) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const auto folder = dir_ / "photos";
    std::filesystem::create_directory(folder);
    for (const char* name : {"chelsea.png", "coffee.png", "rocket.jpg"}) std::filesystem::copy_file(fixtures / "images" / name, folder / name);
    const auto events = dir_ / "events.jsonl";
    const auto run = run_command(live("--source " + shell_quote(folder.string()) + " --every-frame --smooth 1 --hysteresis 0 --threshold 0.2 --jsonl " +
                                      shell_quote(events.string())));
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto reference = run_command(classify("--top-k 3 --threshold 0.2 --jsonl " + shell_quote(folder.string())));
    ASSERT_EQ(reference.exit_code, 0) << reference.err;
    const auto lines = read_json_lines(events);
    const auto answers = parse_json_lines(reference.out);
    ASSERT_EQ(lines.size(), 3u);
    ASSERT_EQ(answers.size(), 3u);
    for (size_t i = 0; i < 3; ++i) expect_same_answer(lines[i], answers[i], answers[i].at("image").get<std::string>());
}

// Real time on a 60 fps clip: the model cannot keep up, so frames are dropped rather than queued,
// and the capture-to-result latency stays near one inference instead of growing with the clip.
TEST_F(LiveCommand, RealTimeDropsLateFramesAndKeepsLatencyBounded) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const int frames = 180;
    const auto clip = make_clip(fixtures, "fast.mp4", 160, 120, 60, frames, "-c:v libx264 -pix_fmt yuv420p");
    const auto events = dir_ / "events.jsonl";
    const auto stats = dir_ / "stats.json";
    const auto run = run_command(live("--source " + shell_quote(clip.string()) + " --jsonl " + shell_quote(events.string()) + " --stats " +
                                      shell_quote(stats.string())));
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const json summary = read_json(stats);
    const auto lines = read_json_lines(events);
    const int64_t read = summary.at("frames_read"), processed = summary.at("frames_processed"), dropped = summary.at("frames_dropped");
    EXPECT_EQ(read, frames);
    EXPECT_EQ(processed + dropped, read);
    EXPECT_EQ(static_cast<int64_t>(lines.size()), processed);
    EXPECT_GE(summary.at("seconds").get<double>(), 2.5) << "a file in real-time mode plays at its own frame rate";

    std::vector<double> inference;
    for (const auto& l : lines) inference.push_back(l.at("inference_ms"));
    std::sort(inference.begin(), inference.end());
    const double median_inference = inference[inference.size() / 2];
    const double slowest = inference.back();
    if (median_inference > 1.2 * 1000.0 / 60.0) {
        EXPECT_GT(dropped, 0) << "inference takes " << median_inference << " ms, longer than a frame";
        EXPECT_LT(processed, frames);
    }
    int64_t previous = -1;
    for (const auto& l : lines) {
        EXPECT_GT(l.at("frame").get<int64_t>(), previous);
        previous = l.at("frame");
        // A queue would let this grow to seconds by the end of the clip; the slot bounds it by about one
        // inference plus the preprocessing and the wait for the next frame.
        EXPECT_LT(l.at("latency_ms").get<double>(), 3.0 * slowest + 250.0) << "frame " << previous;
    }
}

TEST_F(LiveCommand, AnnotatedVideoHasEveryFrameWithTheOverlay) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const int frames = 12;
    const auto clip = make_clip(fixtures, "in.mp4", 320, 240, 10, frames, "-c:v libx264 -pix_fmt yuv420p -crf 18");
    const auto out = dir_ / "annotated.mp4";
    const auto stats = dir_ / "stats.json";
    const auto run = run_command(live("--source " + shell_quote(clip.string()) + " --every-frame --out " + shell_quote(out.string()) +
                                      " --stats " + shell_quote(stats.string())));
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(count_frames(out), frames);
    EXPECT_EQ(read_json(stats).at("frames_written"), frames);

    const auto input = decode_raw(clip, "gray");
    const auto output = decode_raw(out, "gray");
    const size_t plane = 320 * 240;
    ASSERT_EQ(input.size(), plane * frames);
    ASSERT_EQ(output.size(), plane * frames);
    const auto region_difference = [&](int frame, int x0, int y0, int x1, int y1) {
        double sum = 0;
        for (int y = y0; y < y1; ++y) {
            for (int x = x0; x < x1; ++x) {
                const size_t i = plane * frame + static_cast<size_t>(y) * 320 + x;
                sum += std::abs(static_cast<int>(input[i]) - static_cast<int>(output[i]));
            }
        }
        return sum / ((x1 - x0) * (y1 - y0));
    };
    for (int f = 0; f < frames; ++f) {
        EXPECT_GT(region_difference(f, 6, 6, 60, 22), 20.0) << "no overlay on frame " << f;   // the label box
        EXPECT_LT(region_difference(f, 160, 140, 320, 240), 4.0) << "frame " << f << " changed away from the overlay";
    }
}

// Runs a program in the background with its output in files; returns its pid.
pid_t spawn(const std::vector<std::string>& arguments, const std::filesystem::path& out, const std::filesystem::path& err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int status = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return status == 0 ? pid : -1;
}

// Waits up to `seconds` for the process; its exit code, or -1 if it had to be killed.
int wait_for_exit(pid_t pid, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (std::chrono::steady_clock::now() < until) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(LiveCommand, InterruptFinalizesTheVideoAndTheEvents) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const int frames = 300;  // 30 s at 10 fps: the interrupt comes long before the end
    const auto clip = make_clip(fixtures, "long.mp4", 160, 120, 10, frames, "-c:v libx264 -pix_fmt yuv420p");
    const auto out = dir_ / "annotated.mp4";
    const auto events = dir_ / "events.jsonl";
    const auto stats = dir_ / "stats.json";
    const auto dump = dir_ / "frames";
    setenv("MCLIP_CACHE", (dir_ / "cache").c_str(), 1);
    const pid_t pid = spawn({mclip::testing::mclip_executable().string(), "live", "--model", model_path().string(), "--labels", kLabels,
                             "--source", clip.string(), "--out", out.string(), "--jsonl", events.string(), "--stats", stats.string(),
                             "--dump-frames", dump.string()},
                            dir_ / "stdout", dir_ / "stderr");
    ASSERT_GT(pid, 0);
    // Interrupt once a few frames have been processed (each processed frame leaves a PNG).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    size_t dumped = 0;
    while (std::chrono::steady_clock::now() < deadline && dumped < 3) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        dumped = 0;
        std::error_code ec;
        for (std::filesystem::directory_iterator it(dump, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->path().filename().string().rfind("frame_", 0) == 0) ++dumped;
        }
    }
    ASSERT_GE(dumped, 3u) << slurp(dir_ / "stderr");
    kill(pid, SIGINT);
    const int exit_code = wait_for_exit(pid, 60);
    ASSERT_EQ(exit_code, 0) << slurp(dir_ / "stderr");
    EXPECT_NE(slurp(dir_ / "stderr").find("frames read"), std::string::npos) << "no statistics printed";

    const json summary = read_json(stats);
    EXPECT_TRUE(summary.at("interrupted").get<bool>());
    const int64_t read = summary.at("frames_read");
    EXPECT_LT(read, frames);
    EXPECT_EQ(summary.at("frames_processed").get<int64_t>() + summary.at("frames_dropped").get<int64_t>(), read);
    EXPECT_EQ(summary.at("frames_written"), read);
    EXPECT_EQ(count_frames(out), read);  // a complete, playable file
    const auto lines = read_json_lines(events);
    EXPECT_EQ(static_cast<int64_t>(lines.size()), summary.at("frames_processed").get<int64_t>());
    EXPECT_GE(lines.size(), 1u);
}

TEST_F(LiveCommand, BadSourcesGiveClearErrors) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const auto missing = run_command(live("--source " + shell_quote((dir_ / "missing.mp4").string())));
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_NE(missing.err.find("missing.mp4: no such file"), std::string::npos) << missing.err;

    const auto device = run_command(live("--source /dev/video97"));
    EXPECT_NE(device.exit_code, 0);
    EXPECT_NE(device.err.find("/dev/video97: no such camera device"), std::string::npos) << device.err;

    std::ofstream(dir_ / "text.mp4") << "plain text, not a video\n";
    const auto unreadable = run_command(live("--source " + shell_quote((dir_ / "text.mp4").string())));
    EXPECT_NE(unreadable.exit_code, 0);
    EXPECT_NE(unreadable.err.find("text.mp4: cannot"), std::string::npos) << unreadable.err;

    const auto live_every_frame = run_command(live("--source rtsp://127.0.0.1:9/stream --every-frame"));
    EXPECT_NE(live_every_frame.exit_code, 0);
    EXPECT_NE(live_every_frame.err.find("--every-frame needs a file or a folder"), std::string::npos) << live_every_frame.err;

    const auto bad_output = run_command(live("--source " + shell_quote((dir_ / "text.mp4").string()) + " --out " +
                                             shell_quote((dir_ / "no-such-folder" / "out.mp4").string())));
    EXPECT_NE(bad_output.exit_code, 0);
    EXPECT_NE(bad_output.err.find("out.mp4: no such folder"), std::string::npos) << bad_output.err;

    const auto refused = run_command(live("--source tcp://127.0.0.1:9"));
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("tcp://127.0.0.1:9: cannot open"), std::string::npos) << refused.err;
}

// A TCP stream served twice and then gone: mclip reconnects after the first drop, continues, and
// after the second gives up with an error once its retries are spent, keeping what it processed.
TEST_F(LiveCommand, DroppedStreamIsRetriedWithBackoff) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const int frames = 20;
    const auto clip = make_clip(fixtures, "stream.ts", 160, 120, 20, frames, "-c:v libx264 -pix_fmt yuv420p -f mpegts");
    const std::string payload = slurp(clip);

    // Close-on-exec: mclip (started through a shell) must not inherit the listening socket.
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    socklen_t length = sizeof(address);
    getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
    ASSERT_EQ(listen(listener, 4), 0);
    const std::string url = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));

    const auto events = dir_ / "events.jsonl";
    const auto stats = dir_ / "stats.json";
    mclip::testing::CommandResult result;
    std::thread client([&] {
        result = run_command(live("--source " + url + " --retries 2 --retry-delay 0.2 --jsonl " + shell_quote(events.string()) +
                                  " --stats " + shell_quote(stats.string())));
    });
    for (int session = 0; session < 2; ++session) {
        pollfd waiting{listener, POLLIN, 0};
        ASSERT_EQ(poll(&waiting, 1, 120000), 1) << "mclip did not connect (session " << session << ")";
        const int connection = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        ASSERT_GE(connection, 0);
        for (size_t sent = 0; sent < payload.size();) {
            const ssize_t n = send(connection, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
        }
        close(connection);  // the stream drops
    }
    close(listener);  // and stays gone: the reconnection attempts are refused
    client.join();

    EXPECT_NE(result.exit_code, 0);
    EXPECT_NE(result.err.find("reconnecting in 0.2 s (attempt 1 of 2)"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("reconnecting in 0.4 s (attempt 2 of 2)"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("gave up after 2 reconnection attempts"), std::string::npos) << result.err;
    const json summary = read_json(stats);
    EXPECT_EQ(summary.at("frames_read"), 2 * frames) << "both sessions' frames were read";
    const auto lines = read_json_lines(events);
    EXPECT_GE(lines.size(), 1u);
    EXPECT_EQ(static_cast<int64_t>(lines.size()), summary.at("frames_processed").get<int64_t>());
}

TEST_F(LiveCommand, ShowWithoutADisplayRunsWithoutAWindow) {
    REQUIRE_LIVE_PREREQUISITES(fixtures);
    const auto clip = make_clip(fixtures, "show.mp4", 160, 120, 10, 2, "-c:v libx264 -pix_fmt yuv420p");
    const auto headless = run_command("env -u DISPLAY -u WAYLAND_DISPLAY SDL_VIDEODRIVER=x11 " +
                                      live("--source " + shell_quote(clip.string()) + " --every-frame --show"));
    EXPECT_EQ(headless.exit_code, 0) << headless.err;
    EXPECT_NE(headless.err.find("running without a window"), std::string::npos) << headless.err;
    EXPECT_NE(headless.err.find("2 frames read, 2 processed"), std::string::npos) << headless.err;

    // SDL's dummy video driver opens a window that is never shown: the display path runs.
    const auto dummy = run_command("SDL_VIDEODRIVER=dummy " + live("--source " + shell_quote(clip.string()) + " --every-frame --show"));
    EXPECT_EQ(dummy.exit_code, 0) << dummy.err;
    EXPECT_EQ(dummy.err.find("running without a window"), std::string::npos) << dummy.err;
}

}  // namespace
