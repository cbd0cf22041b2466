// The server's batcher: image requests from many connection threads at once are encoded in
// batches on one worker, and each caller gets its own image's embedding; model tasks interleave;
// a full queue refuses at once. Run under ThreadSanitizer by scripts/sanitize.sh tsan.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <future>
#include <thread>
#include <vector>

#include "batcher.h"
#include "metrics.h"
#include "mclip/error.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;

namespace {

// A 64×48 image of one color per index, so that every client's answer is distinguishable.
Image colored(int index) {
    Image image;
    image.width = 64;
    image.height = 48;
    image.rgb.resize(64 * 48 * 3);
    for (size_t i = 0; i < image.rgb.size(); i += 3) {
        image.rgb[i] = static_cast<uint8_t>(37 * index);
        image.rgb[i + 1] = static_cast<uint8_t>(255 - 29 * index);
        image.rgb[i + 2] = static_cast<uint8_t>(90 + 13 * index);
    }
    return image;
}

double max_relative_diff(const std::vector<float>& got, std::span<const float> want) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - want[i]));
        norm = std::max(norm, std::fabs(static_cast<double>(want[i])));
    }
    return diff / norm;
}

Model load_s0() {
    ModelParams params;
    params.precision = "f32";
    return Model::load((test_models_dir() / "mobileclip_s0.gguf").string(), params);
}

TEST(BatcherChunks, PowersOfTwoLargestFirstCoveringTheBatch) {
    EXPECT_EQ(server::power_of_two_chunks(0), std::vector<size_t>{});
    EXPECT_EQ(server::power_of_two_chunks(1), std::vector<size_t>{1});
    EXPECT_EQ(server::power_of_two_chunks(13), (std::vector<size_t>{8, 4, 1}));
    EXPECT_EQ(server::power_of_two_chunks(16), std::vector<size_t>{16});
    EXPECT_EQ(server::power_of_two_chunks(31), (std::vector<size_t>{16, 8, 4, 2, 1}));
}

TEST(BatcherConcurrent, ClientsOnManyThreadsGetTheirOwnImagesEmbedding) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const Model model = load_s0();
    constexpr int clients = 6;
    std::vector<Embeddings> alone;
    for (int i = 0; i < clients; ++i) alone.push_back(model.embed_images(std::vector<Image>{colored(i)}));

    server::Metrics metrics;
    server::BatcherOptions options;
    options.max_batch = 4;
    server::Batcher batcher(model, options, metrics);
    std::vector<std::vector<float>> answers(clients);
    std::atomic<int> tasks_run{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            answers[i] = batcher.embed_image(colored(i)).get();
            batcher.run([&] { ++tasks_run; }).get();
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(tasks_run.load(), clients);
    EXPECT_EQ(batcher.queue_depth(), 0u);
    for (int i = 0; i < clients; ++i) {
        ASSERT_EQ(answers[i].size(), static_cast<size_t>(alone[i].dim)) << "client " << i;
        // Batched and single-image oneDNN results may differ in the last bits.
        EXPECT_LT(max_relative_diff(answers[i], alone[i].row(0)), 1e-4) << "client " << i;
    }
}

TEST(BatcherConcurrent, AFullQueueRefusesAtOnceAndTheRestAreAnswered) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const Model model = load_s0();
    server::Metrics metrics;
    server::BatcherOptions options;
    options.max_batch = 1;
    options.max_queue = 2;
    server::Batcher batcher(model, options, metrics);
    // Hold the worker so that the queue fills.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::future<void> blocker = batcher.run([released] { released.wait(); });
    std::vector<std::future<std::vector<float>>> accepted;
    int refused = 0;
    for (int i = 0; i < 5; ++i) {
        try {
            accepted.push_back(batcher.embed_image(colored(i)));
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("busy"), std::string::npos) << e.what();
            ++refused;
        }
    }
    release.set_value();
    blocker.get();
    for (auto& answer : accepted) EXPECT_EQ(answer.get().size(), 512u);
    EXPECT_GE(refused, 2) << "at most two requests wait beside the running one";
    EXPECT_EQ(accepted.size() + static_cast<size_t>(refused), 5u);
}

}  // namespace
