// The pipeline's hand-offs and the score smoothing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "common/error.h"
#include "video/latest_slot.h"
#include "video/smoothing.h"

namespace {

using mclip::LatestSlot;
using mclip::PutOutcome;

TEST(LatestSlot, NewestValueWinsAndReplacementsAreReported) {
    LatestSlot<int> slot(LatestSlot<int>::Mode::replace);
    EXPECT_EQ(slot.put(1), PutOutcome::stored);
    EXPECT_EQ(slot.put(2), PutOutcome::replaced);
    EXPECT_EQ(slot.put(3), PutOutcome::replaced);
    EXPECT_EQ(slot.take(), 3);
    EXPECT_EQ(slot.put(4), PutOutcome::stored);
    slot.close();
    EXPECT_EQ(slot.put(5), PutOutcome::closed);
    EXPECT_EQ(slot.take(), 4);  // closing keeps what is there for the consumer
    EXPECT_EQ(slot.take(), std::nullopt);
}

TEST(LatestSlot, WaitModeLosesNothing) {
    LatestSlot<int> slot(LatestSlot<int>::Mode::wait);
    std::thread producer([&] {
        for (int i = 0; i < 500; ++i) EXPECT_EQ(slot.put(i), PutOutcome::stored);
        slot.close();
    });
    std::vector<int> taken;
    while (auto v = slot.take()) taken.push_back(*v);
    producer.join();
    ASSERT_EQ(taken.size(), 500u);
    for (int i = 0; i < 500; ++i) EXPECT_EQ(taken[i], i);
}

TEST(LatestSlot, CancelDiscardsAndWakesEveryone) {
    LatestSlot<int> slot(LatestSlot<int>::Mode::wait);
    EXPECT_EQ(slot.put(1), PutOutcome::stored);
    std::atomic<bool> returned{false};
    PutOutcome blocked_outcome = PutOutcome::stored;
    std::thread producer([&] {
        blocked_outcome = slot.put(2);  // waits: the slot is full
        returned = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_FALSE(returned);
    EXPECT_EQ(slot.cancel(), 1u);
    producer.join();
    EXPECT_EQ(blocked_outcome, PutOutcome::closed);
    EXPECT_EQ(slot.take(), std::nullopt);
    EXPECT_FALSE(slot.wait_until_empty());
}

TEST(BoundedQueue, PushWaitsForRoomAndKeepsOrder) {
    mclip::BoundedQueue<int> queue(2);
    EXPECT_TRUE(queue.push(1));
    EXPECT_TRUE(queue.push(2));
    std::atomic<bool> pushed{false};
    std::thread producer([&] {
        EXPECT_TRUE(queue.push(3));
        pushed = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_FALSE(pushed);
    bool finished = false;
    EXPECT_EQ(queue.pop_for(std::chrono::milliseconds(10), finished), 1);
    producer.join();
    EXPECT_TRUE(pushed);
    queue.close();
    EXPECT_FALSE(queue.push(4));
    EXPECT_EQ(queue.pop_for(std::chrono::milliseconds(10), finished), 2);
    EXPECT_EQ(queue.pop_for(std::chrono::milliseconds(10), finished), 3);
    EXPECT_FALSE(finished);
    EXPECT_EQ(queue.pop_for(std::chrono::milliseconds(10), finished), std::nullopt);
    EXPECT_TRUE(finished);
}

// With alpha 1 and no hysteresis the decision is classify's: the best class unless below T.
TEST(ScoreSmoother, WithoutSmoothingDecidesLikeClassify) {
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> raw(0.0f, 1.0f);
    mclip::ScoreSmoother smoother(4, {1.0f, 0.4f, 0.0f});
    for (int frame = 0; frame < 200; ++frame) {
        std::vector<float> p(4);
        float sum = 0;
        for (float& v : p) sum += v = raw(rng) * raw(rng);
        for (float& v : p) v /= sum;
        int best = 0;
        for (int c = 1; c < 4; ++c) {
            if (p[c] > p[best]) best = c;
        }
        const auto d = smoother.update(p);
        EXPECT_EQ(d.best, best);
        EXPECT_EQ(d.label, p[best] >= 0.4f ? best : -1) << "frame " << frame;
        EXPECT_EQ(d.confidence, p[best]);
    }
}

TEST(ScoreSmoother, AveragesExponentially) {
    mclip::ScoreSmoother smoother(2, {0.25f, 0.6f, 0.0f});
    smoother.update({1.0f, 0.0f});  // the first frame is taken as it is
    EXPECT_FLOAT_EQ(smoother.smoothed()[0], 1.0f);
    EXPECT_EQ(smoother.update({0.0f, 1.0f}).label, 0);  // 0.25 * 0 + 0.75 * 1, and 0.25 * 1 + 0.75 * 0
    EXPECT_FLOAT_EQ(smoother.smoothed()[0], 0.75f);
    EXPECT_FLOAT_EQ(smoother.smoothed()[1], 0.25f);
    const auto d = smoother.update({0.0f, 1.0f});          // 0.5625 and 0.4375: below T, so unknown
    EXPECT_FLOAT_EQ(smoother.smoothed()[0], 0.5625f);
    EXPECT_EQ(d.label, -1);
    EXPECT_EQ(d.best, 0);
    EXPECT_FLOAT_EQ(d.confidence, 0.5625f);
}

TEST(ScoreSmoother, HysteresisHoldsTheLabel) {
    // T = 0.6, H = 0.1: a label comes on at 0.6, goes off below 0.5, and yields only to a class
    // 0.1 ahead of it.
    mclip::ScoreSmoother smoother(2, {1.0f, 0.6f, 0.1f});
    EXPECT_EQ(smoother.update({0.55f, 0.45f}).label, -1);  // below T
    EXPECT_EQ(smoother.update({0.65f, 0.35f}).label, 0);   // on
    EXPECT_EQ(smoother.update({0.52f, 0.48f}).label, 0);   // held: still >= T - H
    EXPECT_EQ(smoother.update({0.45f, 0.55f}).label, -1);  // off: below T - H, and class 1 < T
    EXPECT_EQ(smoother.update({0.41f, 0.59f}).label, -1);  // class 1 not yet at T
    EXPECT_EQ(smoother.update({0.38f, 0.62f}).label, 1);   // on

    mclip::ScoreSmoother switching(3, {1.0f, 0.3f, 0.1f});
    EXPECT_EQ(switching.update({0.5f, 0.3f, 0.2f}).label, 0);
    EXPECT_EQ(switching.update({0.38f, 0.44f, 0.18f}).label, 0);  // class 1 ahead by less than H
    EXPECT_EQ(switching.update({0.3f, 0.5f, 0.2f}).label, 1);     // ahead by 0.2: switch
}

TEST(ScoreSmoother, RefusesBadSettings) {
    EXPECT_THROW(mclip::ScoreSmoother(3, {0.0f, 0.5f, 0.0f}), mclip::Error);
    EXPECT_THROW(mclip::ScoreSmoother(3, {1.5f, 0.5f, 0.0f}), mclip::Error);
    EXPECT_THROW(mclip::ScoreSmoother(3, {0.5f, 0.5f, -0.1f}), mclip::Error);
    mclip::ScoreSmoother smoother(3, {0.5f, 0.5f, 0.0f});
    EXPECT_THROW(smoother.update({0.5f, 0.5f}), mclip::Error);
}

}  // namespace
