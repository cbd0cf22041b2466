#include "metrics.h"

#include <cstdio>

namespace mclip::server {

namespace {

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

const std::vector<double> latency_bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += value;
    ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
    const std::string sep = labels.empty() ? "" : ",";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
        cumulative += counts_[i];
        const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
        out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    const std::string braces = labels.empty() ? "" : "{" + labels + "}";
    out += name + "_sum" + braces + " " + number(sum_) + "\n";
    out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics() : batch_sizes_({1, 2, 4, 8, 16, 32, 64}), inference_(latency_bounds) {}

void Metrics::observe_request(const std::string& route, int status, double seconds) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
    latency_.try_emplace(route, latency_bounds).first->second.observe(seconds);
}

void Metrics::observe_batch(size_t size) {
    std::lock_guard lock(mutex_);
    batch_sizes_.observe(static_cast<double>(size));
}

void Metrics::observe_inference(double seconds) {
    std::lock_guard lock(mutex_);
    inference_.observe(seconds);
}

void Metrics::set_queue_depth(size_t depth) {
    std::lock_guard lock(mutex_);
    queue_depth_ = depth;
}

void Metrics::add_dropped_frames(uint64_t n) {
    std::lock_guard lock(mutex_);
    dropped_frames_ += n;
}

void Metrics::add_stream_frames(uint64_t n) {
    std::lock_guard lock(mutex_);
    stream_frames_ += n;
}

void Metrics::set_streams(int n) {
    std::lock_guard lock(mutex_);
    streams_ = n;
}

std::string Metrics::text() const {
    std::lock_guard lock(mutex_);
    std::string out;
    out += "# HELP mclip_http_requests_total HTTP requests answered, by route and status.\n";
    out += "# TYPE mclip_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
        out += "mclip_http_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
               std::to_string(n) + "\n";
    }
    out += "# HELP mclip_http_request_duration_seconds Time from request to response, by route.\n";
    out += "# TYPE mclip_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) h.write(out, "mclip_http_request_duration_seconds", "route=\"" + route + "\"");
    out += "# HELP mclip_batch_size Images encoded together by the model worker.\n";
    out += "# TYPE mclip_batch_size histogram\n";
    batch_sizes_.write(out, "mclip_batch_size", "");
    out += "# HELP mclip_inference_duration_seconds Time the image encoder took per batch.\n";
    out += "# TYPE mclip_inference_duration_seconds histogram\n";
    inference_.write(out, "mclip_inference_duration_seconds", "");
    out += "# HELP mclip_queue_depth Requests waiting for the model worker.\n";
    out += "# TYPE mclip_queue_depth gauge\n";
    out += "mclip_queue_depth " + std::to_string(queue_depth_) + "\n";
    out += "# HELP mclip_stream_frames_total WebSocket frames classified.\n";
    out += "# TYPE mclip_stream_frames_total counter\n";
    out += "mclip_stream_frames_total " + std::to_string(stream_frames_) + "\n";
    out += "# HELP mclip_stream_dropped_frames_total WebSocket frames replaced by a newer one before the model was free.\n";
    out += "# TYPE mclip_stream_dropped_frames_total counter\n";
    out += "mclip_stream_dropped_frames_total " + std::to_string(dropped_frames_) + "\n";
    out += "# HELP mclip_streams Open WebSocket streams.\n";
    out += "# TYPE mclip_streams gauge\n";
    out += "mclip_streams " + std::to_string(streams_) + "\n";
    return out;
}

}  // namespace mclip::server
