#include "support/thread_usage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mclip::testing {

namespace {

// Clock ticks of CPU time (user + system) of every thread of this process, by thread id.
std::map<int, long> cpu_ticks_per_thread() {
    std::map<int, long> ticks;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream in(entry.path() / "stat");
        std::string line;
        if (!std::getline(in, line)) continue;  // the thread ended meanwhile
        // Fields after the command name (which may hold spaces) in parentheses: state is field 3,
        // utime and stime are fields 14 and 15.
        std::istringstream fields(line.substr(line.rfind(')') + 2));
        std::string field;
        long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && fields >> field; ++i) {
            if (i == 14) utime = std::stol(field);
            if (i == 15) stime = std::stol(field);
        }
        ticks[std::stoi(entry.path().filename().string())] = utime + stime;
    }
    return ticks;
}

}  // namespace

int threads_working_during(const std::function<void()>& work) {
    std::map<int, long> before, after;
    std::thread caller([&] {
        before = cpu_ticks_per_thread();
        work();
        after = cpu_ticks_per_thread();
    });
    caller.join();
    std::vector<long> spent;
    for (const auto& [tid, ticks] : after) {
        const auto it = before.find(tid);
        spent.push_back(ticks - (it == before.end() ? 0 : it->second));
    }
    const long busiest = spent.empty() ? 0 : *std::max_element(spent.begin(), spent.end());
    EXPECT_GE(busiest, 20) << "too little CPU time to count threads (ticks of 1/" << sysconf(_SC_CLK_TCK) << " s)";
    return static_cast<int>(std::count_if(spent.begin(), spent.end(), [&](long t) { return t * 4 >= busiest; }));
}

double thread_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + t.tv_nsec * 1e-9;
}

}  // namespace mclip::testing
