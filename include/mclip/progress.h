// A progress bar for long work, drawn on stderr only when stderr is a terminal (quiet when piped
// or redirected, so logs and CI output stay clean).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "mclip/export.h"

namespace mclip {

class MCLIP_API ProgressBar {
public:
    // total == 0 means unknown: the bar shows a count and a rate instead of a percentage.
    ProgressBar(std::string label, uint64_t total, bool bytes = false);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    void set(uint64_t done);
    void advance(uint64_t delta = 1) { set(done_ + delta); }
    void set_total(uint64_t total) { total_ = total; }
    // Clears the bar's line; later set() calls draw nothing.
    void finish();

    static bool stderr_is_terminal();

private:
    void draw(bool force);

    std::string label_;
    uint64_t total_;
    uint64_t done_ = 0;
    bool bytes_;
    bool enabled_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace mclip
