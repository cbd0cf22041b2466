// `mclip classify`: zero-shot labels for images — any list of words, the top labels with their
// probability, "unknown" below a threshold.
#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "image_inputs.h"
#include "label_options.h"
#include "mclip/mclip.h"
#include "mclip/progress.h"
#include "model_options.h"

namespace {

struct ClassifyArgs {
    mclip::tools::ModelOptions model;
    std::vector<std::string> inputs;
    mclip::tools::LabelOptions labels;
    std::vector<std::string> templates;
    int top_k = 3;
    float threshold = 0.6f;
    bool json = false;
    bool jsonl = false;
    mclip::tools::CacheOptions cache;
    bool no_exif = false;
};

nlohmann::json scores_json(const mclip::Classification& c) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& s : c.top) {
        top.push_back({{"label", s.label}, {"probability", s.probability}, {"logit", s.logit}, {"cosine", s.cosine}});
    }
    return top;
}

void print_table_row(const std::string& image, const mclip::Classification& c, size_t image_width) {
    for (size_t k = 0; k < c.top.size(); ++k) {
        const auto& s = c.top[k];
        std::string label = s.label;
        if (k == 0 && c.unknown) label = "unknown (" + label + "?)";
        std::printf("%-*s  %-28s %7.2f%%  %8.3f\n", static_cast<int>(image_width), k == 0 ? image.c_str() : "",
                    label.c_str(), 100.0 * s.probability, s.logit);
    }
}

int run_classify(const ClassifyArgs& args) {
    if (args.json && args.jsonl) throw mclip::Error(mclip::ErrorCode::invalid_argument, "choose one of --json and --jsonl");
    if (args.threshold < 0 || args.threshold > 1) throw mclip::Error(mclip::ErrorCode::invalid_argument, "--threshold must be between 0 and 1");
    const std::vector<std::string> labels = mclip::tools::gather_labels(args.labels);
    const std::vector<std::string> templates = args.templates.empty() ? mclip::default_templates() : args.templates;
    mclip::validate_templates(templates);
    const std::vector<std::filesystem::path> images = mclip::tools::collect_image_paths(args.inputs);
    if (images.empty()) throw mclip::Error(mclip::ErrorCode::invalid_argument, "no images found in the given paths");

    const mclip::Model model = mclip::tools::load_model(args.model);
    const mclip::LabelSet label_set = model.labels(labels, mclip::tools::label_set_options(templates, args.cache));
    mclip::tools::log_label_set(label_set);
    mclip::DecodeOptions decode;
    decode.apply_exif_orientation = !args.no_exif;

    size_t image_width = 5;
    for (const auto& p : images) image_width = std::max(image_width, p.string().size());
    image_width = std::min<size_t>(image_width, 48);
    if (!args.json && !args.jsonl) std::printf("%-*s  %-28s %8s  %8s\n", static_cast<int>(image_width), "IMAGE", "LABEL", "PROB", "LOGIT");

    nlohmann::json results = nlohmann::json::array();
    nlohmann::json failures = nlohmann::json::array();
    mclip::ProgressBar progress("classifying", images.size());
    const bool show_progress = images.size() > 1;
    for (const auto& path : images) {
        try {
            const mclip::Embeddings embedding = model.embed_image_files({path.string()}, decode);
            const mclip::Classification c = model.classify(embedding.row(0), label_set, args.top_k, args.threshold);
            nlohmann::json row = {{"image", path.string()},
                                  {"label", c.label},
                                  {"confidence", c.confidence},
                                  {"unknown", c.unknown},
                                  {"top_k", scores_json(c)}};
            if (args.jsonl) {
                // File names and labels need not be UTF-8; invalid bytes print as U+FFFD.
                std::printf("%s\n", row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
                std::fflush(stdout);
            } else if (args.json) {
                results.push_back(std::move(row));
            } else {
                if (show_progress) progress.finish();
                print_table_row(path.string(), c, image_width);
            }
        } catch (const mclip::Error& e) {
            if (show_progress) progress.finish();
            std::fprintf(stderr, "mclip: error: %s\n", e.what());
            nlohmann::json failure = {{"image", path.string()}, {"error", e.what()}};
            if (args.jsonl) {
                std::printf("%s\n", failure.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
                std::fflush(stdout);
            }
            failures.push_back(std::move(failure));
        }
        if (show_progress) progress.advance();
    }
    progress.finish();
    if (args.json) {
        nlohmann::json doc = {{"model", args.model.model},
                              {"architecture", model.info().architecture},
                              {"precision", model.info().precision},
                              {"labels", labels},
                              {"templates", templates},
                              {"threshold", args.threshold},
                              {"top_k", args.top_k},
                              {"logit_scale", model.logit_scale()},
                              {"results", results},
                              {"errors", failures}};
        std::printf("%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    if (!failures.empty()) {
        std::fprintf(stderr, "mclip: %zu of %zu images could not be classified\n", failures.size(), images.size());
        return 1;
    }
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<ClassifyArgs>();
    auto* cmd = app.add_subcommand("classify", "Zero-shot classification of images against any list of labels");
    mclip::tools::add_model_options(*cmd, args->model)->required();
    cmd->add_option("inputs", args->inputs, "Image files or directories (walked recursively)")->required();
    mclip::tools::add_label_options(*cmd, args->labels);
    cmd->add_option("--template", args->templates, "Prompt template with {} for the label (repeatable; default \"a photo of a {}.\")")
        ->allow_extra_args(false);
    cmd->add_option("-k,--top-k", args->top_k, "How many labels to report per image")->capture_default_str()->check(CLI::Range(1, 100000));
    cmd->add_option("--threshold", args->threshold, "Below this top probability the answer is \"unknown\"")->capture_default_str();
    cmd->add_flag("--json", args->json, "Print one JSON document at the end");
    cmd->add_flag("--jsonl", args->jsonl, "Print one JSON line per image as it is done");
    mclip::tools::add_cache_options(*cmd, args->cache);
    cmd->add_flag("--no-exif", args->no_exif, "Ignore EXIF orientation (the reference preprocessing does)");
    cmd->callback([args, &exit_code] { exit_code = run_classify(*args); });
}

MCLIP_REGISTER_COMMAND("classify", setup);

}  // namespace
