// Peak multiply-add rates of this CPU, measured with loops that keep enough independent
// accumulators in registers to fill every FMA / dot-product pipe (no memory traffic).
#pragma once

#include <cstdint>
#include <string>

namespace mclip::kernels {

struct PeakLoop {
    std::string instructions;   // empty when the CPU has none for this precision
    std::string missing;        // the feature the CPU lacks, when empty
    // Runs `iterations` rounds on the calling thread; returns the multiply-adds done.
    uint64_t (*run)(uint64_t iterations) = nullptr;
};

PeakLoop f32_peak_loop();
PeakLoop bf16_peak_loop();
PeakLoop int8_peak_loop();

}  // namespace mclip::kernels
