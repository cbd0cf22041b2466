// Counters and histograms for GET /metrics, in the Prometheus text format. Every method is
// thread-safe; the server updates them from its connection threads and its model worker.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mclip::server {

class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double value);
    // Lines `name_bucket{labels,le="..."} n`, `name_sum`, `name_count`; `labels` is "" or `k="v"`.
    void write(std::string& out, const std::string& name, const std::string& labels) const;

private:
    std::vector<double> bounds_;
    std::vector<uint64_t> counts_;  // per bound, not cumulative; the last is +Inf
    double sum_ = 0;
    uint64_t count_ = 0;
};

class Metrics {
public:
    Metrics();
    void observe_request(const std::string& route, int status, double seconds);
    void observe_batch(size_t size);
    void observe_inference(double seconds);
    void set_queue_depth(size_t depth);
    void add_dropped_frames(uint64_t n);
    void add_stream_frames(uint64_t n);
    void set_streams(int n);
    std::string text() const;

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_;  // by route
    Histogram batch_sizes_;
    Histogram inference_;
    size_t queue_depth_ = 0;
    uint64_t dropped_frames_ = 0;
    uint64_t stream_frames_ = 0;
    int streams_ = 0;
};

}  // namespace mclip::server
