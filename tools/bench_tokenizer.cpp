#include "bench_tokenizer.h"

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "mclip/error.h"
#include "stats.h"

namespace mclip::tools {
namespace {

// CLIP-style prompt templates and class names; a few names need the full Unicode cleanup path.
constexpr std::array<std::string_view, 20> kTemplates = {
    "a photo of a {}.",          "a blurry photo of a {}.",      "a black and white photo of the {}.",
    "a low resolution photo of a {}.", "a rendering of a {}.",   "graffiti of the {}.",
    "a bad photo of the {}.",    "a cropped photo of a {}.",     "a tattoo of the {}.",
    "a bright photo of a {}.",   "a photo of a clean {}.",       "a photo of my {}.",
    "art of the {}.",            "a drawing of a {}.",           "a close-up photo of the {}.",
    "itap of a {}.",             "a plastic {}.",                "a photo of the large {}.",
    "a sculpture of a {}.",      "the origami {}.",
};
constexpr std::array<std::string_view, 25> kAdjectives = {
    "red", "small", "old", "wooden", "striped", "fluffy", "rusty", "golden", "wild", "tiny",
    "giant", "broken", "shiny", "spotted", "frozen", "vintage", "electric", "wet", "sleepy", "green",
    "metal", "painted", "hairy", "floating", "Arctic",
};
constexpr std::array<std::string_view, 40> kNouns = {
    "cat", "golden retriever", "tabby cat", "forklift", "airliner", "school bus", "espresso machine",
    "tree frog", "hammerhead shark", "lawn mower", "sea turtle", "umbrella", "violin", "teapot",
    "snowplow", "jellyfish", "pickup truck", "bell pepper", "grey whale", "monarch butterfly",
    "pretzel", "bagel", "torch", "radiator grille", "suspension bridge", "binoculars", "canoe",
    "totem pole", "shopping basket", "hermit crab", "Bernese Mountain Dog", "hot pot", "wok",
    "crème brûlée", "jalapeño", "piñata", "smörgåsbord", "parking meter", "scuba diver", "trolleybus",
};

std::vector<std::string> generate_prompts(int count) {
    std::vector<std::string> prompts;
    prompts.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
        const size_t n = static_cast<size_t>(i);
        const size_t class_index = n / kTemplates.size();
        const std::string name = std::string(kAdjectives[class_index % kAdjectives.size()]) + " " +
                                 std::string(kNouns[(class_index / kAdjectives.size()) % kNouns.size()]);
        std::string prompt(kTemplates[n % kTemplates.size()]);
        prompt.replace(prompt.find("{}"), 2, name);
        prompts.push_back(std::move(prompt));
    }
    return prompts;
}

double seconds_to_tokenize(const Tokenizer& tokenizer, const std::vector<std::string>& prompts) {
    const auto start = std::chrono::steady_clock::now();
    int64_t checksum = 0;
    for (const auto& prompt : prompts) checksum += tokenizer.context(prompt)[1];
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Every prompt starts with a word, so its first id after <start_of_text> is positive; the sum
    // keeps the work observable.
    if (checksum <= 0) throw Error(ErrorCode::internal, "tokenizer benchmark produced no ids");
    return seconds;
}

}  // namespace

nlohmann::json bench_tokenizer(const Tokenizer& tokenizer, int prompts, int repeats) {
    if (prompts < 1 || repeats < 1) {
        throw Error(ErrorCode::invalid_argument, "tokenizer benchmark needs at least one prompt and one repeat");
    }
    const std::vector<std::string> texts = generate_prompts(prompts);
    std::vector<double> cold;
    std::vector<double> warm;
    for (int r = 0; r < repeats; ++r) {
        tokenizer.clear_cache();
        cold.push_back(seconds_to_tokenize(tokenizer, texts));
        warm.push_back(seconds_to_tokenize(tokenizer, texts));
    }
    const double cold_seconds = median(cold);
    const double warm_seconds = median(warm);
    return {{"prompts", prompts},
            {"repeats", repeats},
            {"cold_prompts_per_s", prompts / cold_seconds},
            {"warm_prompts_per_s", prompts / warm_seconds},
            {"cold_ms", cold_seconds * 1000.0},
            {"warm_ms", warm_seconds * 1000.0}};
}

}  // namespace mclip::tools
