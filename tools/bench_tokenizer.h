// Tokenizer throughput for `mclip bench`: prompts per second on one thread.
#pragma once

#include <nlohmann/json.hpp>

#include "mclip/tokenizer.h"

namespace mclip::tools {

// Tokenizes `prompts` distinct generated prompts (templates x adjective-noun class names) to
// 77-id contexts, `repeats` times each way, on the calling thread. "cold" passes start from an
// empty merge cache, "warm" passes follow a pass over the same prompts. Returns the medians:
// {"prompts", "repeats", "cold_prompts_per_s", "warm_prompts_per_s", "cold_ms", "warm_ms"}.
nlohmann::json bench_tokenizer(const Tokenizer& tokenizer, int prompts = 10000, int repeats = 5);

}  // namespace mclip::tools
