// Threads belong to the model, seen through the public API: an mclip::Model loaded with N threads
// computes with N threads on whatever thread calls it, and a second model with another count in
// the same process keeps its own (tests/models/test_threads.cpp checks the same of the internal
// model). The threads that work are counted from their CPU time (support/thread_usage.h).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "mclip/mclip.h"
#include "support/fixtures.h"
#include "support/thread_usage.h"

namespace {

using mclip::testing::thread_cpu_seconds;
using mclip::testing::threads_working_during;

mclip::Model load_s0(int threads) {
    mclip::ModelParams params = mclip::model_default_params();
    params.threads = threads;
    return mclip::Model::load((mclip::testing::test_models_dir() / "mobileclip_s0.gguf").string(), params);
}

// Embeds a batch of two images until the calling thread has spent 0.4 s of CPU time.
void embed_for_a_while(const mclip::Model& model, const std::vector<float>& pixels) {
    const double start = thread_cpu_seconds();
    do {
        model.embed_images(pixels.data(), 2);
    } while (thread_cpu_seconds() - start < 0.4);
}

TEST(PublicApiThreads, EachModelComputesWithItsOwnCountOnAnyCaller) {
    if (std::thread::hardware_concurrency() < 2) {
        GTEST_SKIP() << "this machine has " << std::thread::hardware_concurrency() << " core; the test needs 2";
    }
    const mclip::Model single = load_s0(1);
    const mclip::Model pair = load_s0(2);
    EXPECT_EQ(single.info().threads, 1);
    EXPECT_EQ(pair.info().threads, 2);
    const int size = single.image_size();
    std::vector<float> pixels(static_cast<size_t>(2) * 3 * size * size);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 255) / 255.0f - 0.5f;
    // Built before counting: the first call also packs weights.
    single.embed_images(pixels.data(), 2);
    pair.embed_images(pixels.data(), 2);

    EXPECT_EQ(threads_working_during([&] { embed_for_a_while(single, pixels); }), 1);
    EXPECT_EQ(threads_working_during([&] { embed_for_a_while(pair, pixels); }), 2);
    EXPECT_EQ(threads_working_during([&] { embed_for_a_while(single, pixels); }), 1);
}

}  // namespace
