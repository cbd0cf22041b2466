// How many threads of this process do work while some code runs: measured, not asked, from the
// CPU time each thread (/proc/self/task) accumulates meanwhile. Shared by the thread-ownership
// tests of the internal model and of the public API.
#pragma once

#include <functional>

namespace mclip::testing {

// Runs `work` on a new thread and returns how many threads did a real share (a quarter or more
// of the busiest thread's CPU time) of the process's work meanwhile. The counts are taken on
// that thread, before it ends and takes its OpenMP workers with it. Adds a test failure when the
// work took too little CPU time to tell.
int threads_working_during(const std::function<void()>& work);

// CPU seconds the calling thread has used.
double thread_cpu_seconds();

}  // namespace mclip::testing
