// `mclip bench`: latency, throughput and peak memory of the encoders, measured after warm-up;
// with --profile, the time per operator type; with --peak, the machine's multiply-add peak.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bench_image.h"
#include "bench_tokenizer.h"
#include "command.h"
#include "mclip/mclip.h"
#include "model_options.h"
#include "stats.h"

namespace {

struct BenchArgs {
    mclip::tools::ModelOptions model;
    std::string encoder = "image";
    std::string vocab;
    int batch = 1;
    int warmup = 3;
    int iterations = 20;
    bool json = false;
    bool profile = false;
    bool peak = false;
};

double peak_resident_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

// Milliseconds from this process's start (its /proc/self/stat start time) to `t`: with the first
// call's time, the cold start of `mclip classify` on one image (process start to first result).
double process_uptime_ms_at(std::chrono::steady_clock::time_point t) {
    std::ifstream stat("/proc/self/stat");
    std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Field 22 (starttime, in clock ticks since boot) comes after the parenthesized command name.
    std::istringstream fields(content.substr(content.rfind(')') + 2));
    std::string field;
    for (int i = 3; i < 22 && fields >> field;) ++i;
    unsigned long long start_ticks = 0;
    fields >> start_ticks;
    timespec boot{};
    clock_gettime(CLOCK_BOOTTIME, &boot);
    const double now_since_boot_ms = boot.tv_sec * 1e3 + boot.tv_nsec / 1e6 -
                                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    return now_since_boot_ms - 1e3 * static_cast<double>(start_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU time of the whole process (all threads), which a busy machine inflates less than wall time.
double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

nlohmann::json bench_encoder(const BenchArgs& args) {
    const auto load_start = std::chrono::steady_clock::now();
    const mclip::Model model = mclip::tools::load_model(args.model);
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
    const mclip::ModelInfo& info = model.info();
    std::mt19937 rng(1);
    std::function<void()> run;
    std::vector<float> images;
    std::vector<int32_t> tokens;
    if (args.encoder == "image") {
        images.resize(static_cast<size_t>(args.batch) * 3 * info.image_size * info.image_size);
        std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
        for (float& v : images) v = pixel(rng);
        run = [&] { model.embed_images(images.data(), args.batch); };
    } else if (args.encoder == "text") {
        // Prompts of typical length: start, 8 word tokens, end, zero padding.
        const int context = info.context_length;
        const mclip::Tokenizer& tokenizer = model.tokenizer();
        tokens.assign(static_cast<size_t>(args.batch) * context, 0);
        std::uniform_int_distribution<int32_t> word(300, 40000);
        for (int b = 0; b < args.batch; ++b) {
            int32_t* seq = tokens.data() + static_cast<size_t>(b) * context;
            seq[0] = tokenizer.start_id();
            for (int i = 1; i <= 8; ++i) seq[i] = word(rng);
            seq[9] = tokenizer.end_id();
        }
        run = [&] { model.embed_tokens(tokens.data(), args.batch); };
    } else {
        throw mclip::Error(mclip::ErrorCode::invalid_argument, "unknown encoder '" + args.encoder + "' (expected image or text)");
    }
    // The first call builds the encoder (packs its weights): the cold start of a process.
    const auto first_start = std::chrono::steady_clock::now();
    run();
    const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - first_start).count();
    for (int i = 1; i < args.warmup; ++i) run();
    mclip::profile_reset();
    mclip::profile_set_enabled(args.profile);
    std::vector<double> ms;
    const double cpu_start = process_cpu_ms();
    for (int i = 0; i < args.iterations; ++i) {
        const auto start = std::chrono::steady_clock::now();
        run();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    const double cpu_ms = (process_cpu_ms() - cpu_start) / args.iterations;
    mclip::profile_set_enabled(false);
    const double med = mclip::tools::median(ms);
    nlohmann::json result{{"model", info.architecture},
                          {"encoder", args.encoder},
                          {"backend", info.backend},
                          {"precision", info.precision},
                          {"threads", info.threads},
                          {"batch", args.batch},
                          {"warmup", args.warmup},
                          {"iterations", args.iterations},
                          {"load_ms", load_ms},
                          {"first_call_ms", first_ms},
                          {"cold_start_ms", process_uptime_ms_at(first_start) + first_ms},
                          {"median_ms", med},
                          {"p90_ms", mclip::tools::percentile(ms, 90)},
                          {"min_ms", *std::min_element(ms.begin(), ms.end())},
                          {"cpu_ms", cpu_ms},
                          {"throughput_per_s", args.batch * 1000.0 / med},
                          {"peak_rss_mib", peak_resident_mib()}};
    if (args.profile) {
        nlohmann::json ops = nlohmann::json::array();
        for (const auto& entry : mclip::profile_results()) {
            ops.push_back({{"op", entry.op},
                           {"ms_per_run", entry.total_ms / args.iterations},
                           {"calls_per_run", static_cast<double>(entry.calls) / args.iterations}});
        }
        result["profile"] = ops;
    }
    return result;
}

void print_encoder_result(const BenchArgs& args, const nlohmann::json& r) {
    std::printf("%s %s encoder, %s backend, %s, %d threads, batch %d: median %.2f ms, p90 %.2f ms, cpu %.2f ms, %.1f/s, "
                "peak RSS %.0f MiB\n",
                r["model"].get<std::string>().c_str(), args.encoder.c_str(), r["backend"].get<std::string>().c_str(),
                r["precision"].get<std::string>().c_str(), r["threads"].get<int>(), args.batch, r["median_ms"].get<double>(),
                r["p90_ms"].get<double>(), r["cpu_ms"].get<double>(), r["throughput_per_s"].get<double>(),
                r["peak_rss_mib"].get<double>());
    if (!r.contains("profile")) return;
    // Profiled runs are slower than plain ones (a timer per operator); the shares are what matter.
    double total = 0;
    for (const auto& op : r["profile"]) total += op["ms_per_run"].get<double>();
    std::printf("  %-16s %10s %8s %7s\n", "operator", "ms/run", "calls", "share");
    for (const auto& op : r["profile"]) {
        const double ms = op["ms_per_run"].get<double>();
        std::printf("  %-16s %10.3f %8.1f %6.1f%%\n", op["op"].get<std::string>().c_str(), ms, op["calls_per_run"].get<double>(),
                    total > 0 ? 100.0 * ms / total : 0.0);
    }
}

// The stages before the encoders: tokenizing prompts and turning a camera-sized frame into input.
nlohmann::json bench_input_stage(const BenchArgs& args) {
    if (args.encoder == "preprocess") {
        nlohmann::json result = mclip::tools::bench_image_preprocess(256, std::max(args.iterations, 5));
        result["peak_rss_mib"] = peak_resident_mib();
        return result;
    }
    std::optional<mclip::Tokenizer> tokenizer;
    if (!args.vocab.empty()) {
        tokenizer = mclip::Tokenizer::from_file(args.vocab);
    } else if (!args.model.model.empty()) {
        tokenizer = mclip::Tokenizer::from_merges(mclip::tools::load_model(args.model).tokenizer().merges());
    } else {
        throw mclip::Error(mclip::ErrorCode::invalid_argument, "--encoder tokenizer needs --vocab FILE or a --model with a tokenizer");
    }
    nlohmann::json result = mclip::tools::bench_tokenizer(*tokenizer, 10000, 5);
    result["threads"] = 1;
    return result;
}

// `--peak`: the machine's multiply-add peak per precision on the chosen threads.
nlohmann::json bench_peak(const BenchArgs& args) {
    nlohmann::json rates = nlohmann::json::array();
    for (const mclip::PeakRate& rate : mclip::measure_peak(args.model.threads)) {
        nlohmann::json entry = {{"precision", rate.precision}, {"available", rate.available}, {"threads", rate.threads}};
        if (rate.available) {
            entry["instructions"] = rate.instructions;
            entry["gmac_per_s"] = rate.gmac_per_second;
            entry["gmac_per_s_per_thread"] = rate.gmac_per_second / rate.threads;
        } else {
            entry["reason"] = rate.reason;
        }
        rates.push_back(entry);
    }
    return {{"peak", rates}};
}

void print_peak(const nlohmann::json& result) {
    for (const auto& rate : result["peak"]) {
        if (rate["available"].get<bool>()) {
            std::printf("%-5s %8.1f GMAC/s on %d threads (%.1f per thread, %s)\n", rate["precision"].get<std::string>().c_str(),
                        rate["gmac_per_s"].get<double>(), rate["threads"].get<int>(), rate["gmac_per_s_per_thread"].get<double>(),
                        rate["instructions"].get<std::string>().c_str());
        } else {
            std::printf("%-5s not available: %s\n", rate["precision"].get<std::string>().c_str(), rate["reason"].get<std::string>().c_str());
        }
    }
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<BenchArgs>();
    auto* cmd = app.add_subcommand("bench", "Measure encoder latency, throughput and memory");
    mclip::tools::add_model_options(*cmd, args->model, "Model file (GGUF) or model name (not needed for --encoder preprocess)");
    cmd->add_option("--vocab", args->vocab, "BPE vocabulary for --encoder tokenizer when no model is given");
    cmd->add_option("--encoder", args->encoder,
                    "What to measure: image or text (encoders), tokenizer (prompts/s, one thread), preprocess "
                    "(decode and preprocessing of a 1920x1080 frame)")->capture_default_str();
    cmd->add_option("--batch", args->batch, "Images or prompts per call")->capture_default_str()->check(CLI::Range(1, 4096));
    cmd->add_option("--warmup", args->warmup, "Untimed runs first")->capture_default_str()->check(CLI::Range(0, 1000));
    cmd->add_option("--iterations", args->iterations, "Timed runs")->capture_default_str()->check(CLI::Range(1, 100000));
    cmd->add_flag("--json", args->json, "Print one JSON document");
    cmd->add_flag("--profile", args->profile, "Also report the time per operator type");
    cmd->add_flag("--peak", args->peak,
                  "Measure this machine's multiply-add peak (float32 FMA; bf16 and int8 dot products where the CPU has them) "
                  "on --threads threads instead of an encoder");
    cmd->callback([args, &exit_code] {
        if (args->peak) {
            const nlohmann::json result = bench_peak(*args);
            if (args->json) {
                std::printf("%s\n", result.dump(2).c_str());
            } else {
                print_peak(result);
            }
            exit_code = 0;
            return;
        }
        if (args->encoder == "tokenizer" || args->encoder == "preprocess") {
            const nlohmann::json result = bench_input_stage(*args);
            std::printf("%s\n", result.dump(args->json ? 2 : -1).c_str());
            exit_code = 0;
            return;
        }
        if (args->model.model.empty()) throw mclip::Error(mclip::ErrorCode::invalid_argument, "--model is required for --encoder " + args->encoder);
        const nlohmann::json result = bench_encoder(*args);
        if (args->json) {
            std::printf("%s\n", result.dump(2).c_str());
        } else {
            print_encoder_result(*args, result);
        }
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("bench", setup);

}  // namespace
