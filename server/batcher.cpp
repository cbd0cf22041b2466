#include "batcher.h"

#include <algorithm>
#include <exception>

#include "metrics.h"

namespace mclip::server {

Batcher::Batcher(const Model& model, BatcherOptions options, Metrics& metrics)
    : model_(model), options_(options), metrics_(metrics) {
    options_.max_batch = std::max(1, options_.max_batch);
    worker_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
}

size_t Batcher::queue_depth() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void Batcher::push(Job job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) throw Error(ErrorCode::unsupported, "the server is shutting down");
        if (queue_.size() >= options_.max_queue) throw Error(ErrorCode::unsupported, "busy: too many requests waiting for the model");
        queue_.push_back(std::move(job));
        metrics_.set_queue_depth(queue_.size());
    }
    wake_.notify_one();
}

std::future<std::vector<float>> Batcher::embed_image(Image image) {
    ImageJob job{std::move(image), {}};
    auto future = job.result.get_future();
    push(std::move(job));
    return future;
}

std::future<void> Batcher::run(std::function<void()> job) {
    TaskJob task{std::move(job), {}};
    auto future = task.done.get_future();
    push(std::move(task));
    return future;
}

void Batcher::loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left to answer

        if (auto* task = std::get_if<TaskJob>(&queue_.front())) {
            TaskJob job = std::move(*task);
            queue_.pop_front();
            metrics_.set_queue_depth(queue_.size());
            lock.unlock();
            try {
                job.job();
                job.done.set_value();
            } catch (...) {
                job.done.set_exception(std::current_exception());
            }
            lock.lock();
            continue;
        }

        // An image: give others a few milliseconds to join it, unless the batch is already full.
        const auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
        auto images_waiting = [this] {
            return static_cast<int>(std::count_if(queue_.begin(), queue_.end(),
                                                  [](const Job& j) { return std::holds_alternative<ImageJob>(j); }));
        };
        while (!stopping_ && images_waiting() < options_.max_batch) {
            if (wake_.wait_until(lock, deadline) == std::cv_status::timeout) break;
        }
        std::vector<ImageJob> batch;
        for (auto it = queue_.begin(); it != queue_.end() && static_cast<int>(batch.size()) < options_.max_batch;) {
            if (auto* image = std::get_if<ImageJob>(&*it)) {
                batch.push_back(std::move(*image));
                it = queue_.erase(it);
            } else {
                ++it;
            }
        }
        metrics_.set_queue_depth(queue_.size());
        lock.unlock();
        run_batch(batch);
        lock.lock();
    }
}

std::vector<size_t> power_of_two_chunks(size_t n) {
    std::vector<size_t> chunks;
    for (size_t bit = size_t{1} << (8 * sizeof(size_t) - 1); bit != 0; bit >>= 1) {
        if (n & bit) chunks.push_back(bit);
    }
    return chunks;
}

void Batcher::run_batch(std::vector<ImageJob>& batch) {
    metrics_.observe_batch(batch.size());
    size_t done = 0;
    for (const size_t chunk : power_of_two_chunks(batch.size())) {
        std::vector<Image> images;
        images.reserve(chunk);
        for (size_t i = done; i < done + chunk; ++i) images.push_back(std::move(batch[i].image));
        try {
            const auto start = std::chrono::steady_clock::now();
            const Embeddings embeddings = model_.embed_images(std::span<const Image>(images));
            metrics_.observe_inference(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            for (size_t i = 0; i < chunk; ++i) {
                const auto row = embeddings.row(static_cast<int>(i));
                batch[done + i].result.set_value(std::vector<float>(row.begin(), row.end()));
            }
        } catch (...) {
            for (size_t i = done; i < done + chunk; ++i) batch[i].result.set_exception(std::current_exception());
        }
        done += chunk;
    }
}

}  // namespace mclip::server
