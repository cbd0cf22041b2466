// The two hand-offs between pipeline threads.
//
// LatestSlot holds at most one value. In `replace` mode a put over an unconsumed value replaces
// it (latest wins: the replaced frame is dropped, and the caller counts it); in `wait` mode a put
// waits until the consumer has taken the previous value, so nothing is lost (offline analysis).
// Either way the memory held is bounded by one value, whatever the speeds on both sides.
//
// BoundedQueue is a FIFO of at most `capacity` values whose push waits for room: frames on their
// way to the video writer, which must see every frame in order.
//
// close() ends production (takes drain what is left); cancel() also discards what is left and
// says how many values it discarded.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace mclip {

enum class PutOutcome { stored, replaced, closed };

template <class T>
class LatestSlot {
public:
    enum class Mode { replace, wait };
    explicit LatestSlot(Mode mode) : mode_(mode) {}

    PutOutcome put(T value) {
        std::unique_lock lock(mutex_);
        if (mode_ == Mode::wait) changed_.wait(lock, [&] { return !value_ || closed_; });
        if (closed_) return PutOutcome::closed;
        const bool replaced = value_.has_value();
        value_ = std::move(value);
        changed_.notify_all();
        return replaced ? PutOutcome::replaced : PutOutcome::stored;
    }

    // Waits until the slot is empty (its value was taken); false once closed.
    bool wait_until_empty() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return !value_ || closed_; });
        return !closed_;
    }

    // Waits for a value; nullopt once closed and empty.
    std::optional<T> take() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return value_ || closed_; });
        std::optional<T> taken = std::exchange(value_, std::nullopt);
        changed_.notify_all();
        return taken;
    }

    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        changed_.notify_all();
    }

    size_t cancel() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        const size_t discarded = value_ ? 1 : 0;
        value_.reset();
        changed_.notify_all();
        return discarded;
    }

private:
    const Mode mode_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::optional<T> value_;
    bool closed_ = false;
};

template <class T>
class BoundedQueue {
public:
    explicit BoundedQueue(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

    // Waits for room; false when the queue was closed.
    bool push(T value) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return items_.size() < capacity_ || closed_; });
        if (closed_) return false;
        items_.push_back(std::move(value));
        changed_.notify_all();
        return true;
    }

    // Waits up to `timeout` for the oldest value. `finished` is set when the queue is closed and
    // empty (no value will ever come).
    std::optional<T> pop_for(std::chrono::milliseconds timeout, bool& finished) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, timeout, [&] { return !items_.empty() || closed_; });
        finished = items_.empty() && closed_;
        if (items_.empty()) return std::nullopt;
        T value = std::move(items_.front());
        items_.pop_front();
        changed_.notify_all();
        return value;
    }

    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        changed_.notify_all();
    }

private:
    const size_t capacity_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<T> items_;
    bool closed_ = false;
};

}  // namespace mclip
