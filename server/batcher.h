// The one worker that runs the model for every connection. Image requests that arrive close
// together are encoded as one batch (up to max_batch, waiting at most max_wait for company after
// the first); other model work (text embeddings for label sets) runs on the same thread, so the
// server never computes with more than the model's own threads, however many clients there are.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "mclip/mclip.h"

namespace mclip::server {

class Metrics;

// The encoder calls a batch of n images runs as: powers of two, largest first (13: 8, 4, 1). The
// kernels keep prepared primitives for every batch size they meet, so with every size up to
// max_batch the server's memory kept growing as new sizes came (11% over a 20 s load test,
// docs/server.md); in powers of two there are at most log2(max_batch) + 1 sizes, all met early.
std::vector<size_t> power_of_two_chunks(size_t n);

struct BatcherOptions {
    int max_batch = 8;
    std::chrono::microseconds max_wait{3000};
    size_t max_queue = 256;  // waiting requests beyond this are refused (the server answers 503)
};

class Batcher {
public:
    Batcher(const Model& model, BatcherOptions options, Metrics& metrics);
    ~Batcher();
    Batcher(const Batcher&) = delete;
    Batcher& operator=(const Batcher&) = delete;

    // The image's embedding (not normalized), computed in a batch with whatever else is waiting.
    // Throws Error(unsupported) "busy" when the queue is full.
    std::future<std::vector<float>> embed_image(Image image);
    // Runs `job` on the worker, between batches.
    std::future<void> run(std::function<void()> job);

    size_t queue_depth() const;

private:
    struct ImageJob {
        Image image;
        std::promise<std::vector<float>> result;
    };
    struct TaskJob {
        std::function<void()> job;
        std::promise<void> done;
    };
    using Job = std::variant<ImageJob, TaskJob>;

    void push(Job job);
    void loop();
    void run_batch(std::vector<ImageJob>& batch);

    const Model& model_;
    BatcherOptions options_;
    Metrics& metrics_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace mclip::server
