#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace mclip {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::warning)};
std::mutex g_mutex;
LogSink g_sink;

const char* level_prefix(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
    }
    return "";
}

}  // namespace

void log_set_sink(LogSink sink) {
    std::lock_guard lock(g_mutex);
    g_sink = std::move(sink);
}

void log_set_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log_message(LogLevel level, std::string_view message) {
    if (static_cast<int>(level) < g_level.load()) return;
    std::lock_guard lock(g_mutex);
    if (g_sink) {
        g_sink(level, message);
        return;
    }
    std::fprintf(stderr, "mclip: %s: %.*s\n", level_prefix(level), static_cast<int>(message.size()),
                 message.data());
}

}  // namespace mclip
