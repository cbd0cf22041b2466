// Per-operator profiling: wall time per layer type, off unless enabled (`mclip bench --profile`).
//
// Operators open a ProfileScope with a static label ("conv 1x1", "attention", ...). While
// profiling is off a scope costs one relaxed atomic load. Only the outermost scope of a thread
// records: an operator built from other operators (the reference convolution's GELU) is charged
// once, to its own label.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace mclip::kernels {

struct ProfileEntry {
    std::string label;
    double total_ms = 0;
    int64_t calls = 0;
};

void set_profiling(bool enabled);
bool profiling();
// Totals since the last reset, largest first.
std::vector<ProfileEntry> profile_results();
void reset_profile();

class ProfileScope {
public:
    explicit ProfileScope(const char* label) : label_(profiling() && depth_ == 0 ? label : nullptr) {
        if (!label_) return;
        ++depth_;
        start_ = std::chrono::steady_clock::now();
    }
    ~ProfileScope() {
        if (!label_) return;
        record(label_, std::chrono::steady_clock::now() - start_);
        --depth_;
    }
    ProfileScope(const ProfileScope&) = delete;
    ProfileScope& operator=(const ProfileScope&) = delete;

private:
    static void record(const char* label, std::chrono::steady_clock::duration elapsed);
    static thread_local int depth_;
    const char* label_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace mclip::kernels
