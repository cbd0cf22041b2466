// Summary statistics for benchmarks: medians and percentiles of repeated timings.
#pragma once

#include <algorithm>
#include <vector>

namespace mclip::tools {

// The p-th percentile (0..100) by linear interpolation between order statistics.
inline double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
    const size_t lo = static_cast<size_t>(rank);
    const size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

inline double median(const std::vector<double>& values) { return percentile(values, 50); }

}  // namespace mclip::tools
