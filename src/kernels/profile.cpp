#include "kernels/profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace mclip::kernels {
namespace {

std::atomic<bool> enabled{false};
std::mutex totals_mutex;

std::map<std::string, ProfileEntry>& totals() {
    static std::map<std::string, ProfileEntry> table;
    return table;
}

}  // namespace

thread_local int ProfileScope::depth_ = 0;

void set_profiling(bool on) { enabled.store(on, std::memory_order_relaxed); }
bool profiling() { return enabled.load(std::memory_order_relaxed); }

void ProfileScope::record(const char* label, std::chrono::steady_clock::duration elapsed) {
    std::lock_guard lock(totals_mutex);
    ProfileEntry& entry = totals()[label];
    entry.label = label;
    entry.total_ms += std::chrono::duration<double, std::milli>(elapsed).count();
    ++entry.calls;
}

std::vector<ProfileEntry> profile_results() {
    std::lock_guard lock(totals_mutex);
    std::vector<ProfileEntry> entries;
    for (const auto& [label, entry] : totals()) entries.push_back(entry);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
    return entries;
}

void reset_profile() {
    std::lock_guard lock(totals_mutex);
    totals().clear();
}

}  // namespace mclip::kernels
