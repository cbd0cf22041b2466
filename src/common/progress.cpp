#include "mclip/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mclip {
namespace {

std::string human(double value, bool bytes) {
    char buf[32];
    if (!bytes) {
        std::snprintf(buf, sizeof buf, "%.0f", value);
        return buf;
    }
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (value >= 1024 && u < 4) {
        value /= 1024;
        ++u;
    }
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", value, units[u]);
    return buf;
}

}  // namespace

bool ProgressBar::stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, uint64_t total, bool bytes)
    : label_(std::move(label)), total_(total), bytes_(bytes), enabled_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::set(uint64_t done) {
    done_ = done;
    draw(total_ != 0 && done_ >= total_);
}

void ProgressBar::finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
}

void ProgressBar::draw(bool force) {
    if (!enabled_ || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? done_ / seconds : 0;
    std::string line = "\r\033[K" + label_ + " ";
    if (total_) {
        constexpr int width = 30;
        const double fraction = done_ >= total_ ? 1.0 : static_cast<double>(done_) / total_;
        const int filled = static_cast<int>(fraction * width);
        line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
        char pct[16];
        std::snprintf(pct, sizeof pct, "%3.0f%% ", fraction * 100);
        line += pct;
        line += human(done_, bytes_);
        line += '/';
        line += human(total_, bytes_);
    } else {
        line += human(done_, bytes_);
    }
    line += "  " + human(rate, bytes_) + "/s";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
}

}  // namespace mclip
