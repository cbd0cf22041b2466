// `mclip download NAME`: fetch Apple's checkpoint and the CLIP vocabulary from Hugging Face into
// the cache, then convert them into a model file and print its path. docs/download.md has details.
#include <cstdio>

#include "command.h"
#include "common/error.h"
#include "io/download.h"
#include "io/model_registry.h"
#include "models/convert.h"

namespace {

struct DownloadArgs {
    std::string name;
    std::string cache_dir;
    std::string output;
    std::string dtype = "f32";
    std::string revision = "main";
    std::string endpoint;
    bool no_convert = false;
    bool force = false;
};

std::string model_names() {
    std::string names;
    for (const auto& model : mclip::registered_models()) names += (names.empty() ? "" : ", ") + model.name;
    return names;
}

// "mobileclip_s0.gguf" for f32, "mobileclip_s0-q8.gguf" otherwise.
std::filesystem::path default_output(const std::filesystem::path& cache_dir, const mclip::RegisteredModel& model,
                                     const std::string& dtype) {
    std::string stem;
    for (char c : model.name) stem += c == '-' ? '_' : c;
    if (dtype != "f32") stem += "-" + dtype;
    return cache_dir / "models" / (stem + ".gguf");
}

struct Wanted {
    mclip::HubFile file;
    mclip::HubOptions options;
    std::filesystem::path destination;
    std::string url;
    std::string failure;  // empty when fetched
};

std::string convert_command(const mclip::RegisteredModel& model, const Wanted& checkpoint, const Wanted& vocabulary,
                            const std::filesystem::path& output, const std::string& dtype) {
    return "mclip convert --arch " + model.arch + " --in '" + checkpoint.destination.string() + "' --vocab '" +
           vocabulary.destination.string() + "' --out '" + output.string() + "' --dtype " + dtype;
}

// What was tried, what failed, and how to put the files in place without this command.
std::string failure_report(const DownloadArgs& args, const mclip::HubOptions& options,
                           const mclip::RegisteredModel& model, const std::vector<Wanted>& wanted,
                           const std::filesystem::path& output) {
    std::string text = "could not download " + model.name + " from " + options.endpoint + " (revision " +
                       options.revision + "):\n";
    for (const auto& item : wanted) {
        // The library's messages start with the URL, already on the line above.
        std::string outcome = item.failure.empty() ? "ok: " + item.destination.string() : item.failure;
        if (outcome.rfind(item.url + ": ", 0) == 0) outcome.erase(0, item.url.size() + 2);
        text += "  " + item.url + "\n    " + outcome + "\n";
    }
    text += "To set it up by hand, fetch the file(s) elsewhere (a browser, another machine) and place them at:\n";
    for (const auto& item : wanted) {
        if (item.failure.empty()) continue;
        text += "  " + item.destination.string() + "\n      from " + item.url + "\n";
        if (!item.file.sha256.empty()) {
            text += "      SHA-256 " + item.file.sha256 + " as published on huggingface.co (check with sha256sum)\n";
        }
    }
    text += "then run `mclip download " + args.name +
            (args.cache_dir.empty() ? "" : " --cache-dir '" + args.cache_dir + "'") +
            (options.revision == "main" ? "" : " --revision " + options.revision) +
            "` again (files already in the cache are used as they are), or convert directly:\n  " +
            convert_command(model, wanted[0], wanted[1], output, args.dtype);
    return text;
}

void run(const DownloadArgs& args) {
    const mclip::RegisteredModel* model = mclip::find_registered_model(args.name);
    if (!model) {
        throw mclip::Error(mclip::ErrorCode::invalid_argument,
                           "unknown model '" + args.name + "'; known models: " + model_names());
    }
    mclip::HubOptions options = mclip::HubOptions::from_environment();
    if (!args.endpoint.empty()) options.endpoint = args.endpoint;
    options.revision = args.revision;
    options.force = args.force;
    const mclip::StorageType storage = mclip::parse_storage_type(args.dtype);
    const std::filesystem::path cache_dir =
        args.cache_dir.empty() ? mclip::default_cache_dir() : std::filesystem::path(args.cache_dir);
    const std::filesystem::path output =
        args.output.empty() ? default_output(cache_dir, *model, args.dtype) : std::filesystem::path(args.output);

    // --revision names a revision of the model's repository; the vocabulary, pinned by its digest,
    // always comes from its repository's main branch.
    mclip::HubOptions vocabulary_options = options;
    vocabulary_options.revision = "main";
    std::vector<Wanted> wanted;
    for (const auto& [file, file_options] : {std::pair(model->checkpoint, options),
                                              std::pair(mclip::clip_vocabulary_file(), vocabulary_options)}) {
        wanted.push_back({file, file_options, mclip::hub_cache_path(cache_dir, file_options, file),
                          mclip::hub_file_url(file_options, file), {}});
    }
    bool failed = false;
    for (auto& item : wanted) {
        try {
            const mclip::FetchedFile fetched = mclip::fetch_hub_file(item.file, item.destination, item.options);
            if (fetched.from_cache) {
                std::fprintf(stderr, "%s: in the cache\n", item.destination.string().c_str());
            } else {
                std::fprintf(stderr, "%s: downloaded, %s\n", item.destination.string().c_str(),
                             fetched.checksum_source.empty() ? "not verified (no SHA-256 known)"
                                                             : ("SHA-256 verified against " + fetched.checksum_source).c_str());
            }
        } catch (const mclip::Error& e) {
            item.failure = e.what();
            failed = true;
        }
    }
    if (failed) throw mclip::Error(mclip::ErrorCode::network, failure_report(args, options, *model, wanted, output));

    if (args.no_convert) {
        for (const auto& item : wanted) std::printf("%s\n", item.destination.string().c_str());
        return;
    }
    mclip::ConvertOptions convert;
    convert.arch = model->arch;
    convert.storage = storage;
    convert.vocabulary = wanted[1].destination;
    if (output.has_parent_path()) std::filesystem::create_directories(output.parent_path());
    const auto summary = mclip::convert_checkpoint(wanted[0].destination, output, convert);
    std::fprintf(stderr, "converted %s: %zu tensors, %.1f MiB (%s)\n", model->name.c_str(), summary.output_tensors,
                 summary.output_bytes / 1048576.0, args.dtype.c_str());
    std::printf("%s\n", output.string().c_str());
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<DownloadArgs>();
    auto* cmd = app.add_subcommand("download", "Download a MobileCLIP model from Hugging Face and convert it");
    cmd->add_option("name", args->name, "Model: " + model_names() + " (mobileclip_s0 style names work too)")->required();
    cmd->add_option("--cache-dir", args->cache_dir,
                    "Cache folder (default: $MCLIP_CACHE, $XDG_CACHE_HOME/mclip or ~/.cache/mclip)");
    cmd->add_option("--out", args->output, "Model file to write (default: <cache>/models/<name>.gguf)");
    cmd->add_option("--dtype", args->dtype, "Weight storage: f32, f16, bf16 or q8")->capture_default_str();
    cmd->add_option("--revision", args->revision, "Branch, tag or commit of the repositories")->capture_default_str();
    cmd->add_option("--endpoint", args->endpoint, "Hub address (default: $HF_ENDPOINT or https://huggingface.co)");
    cmd->add_flag("--no-convert", args->no_convert, "Only fetch the files; print their paths");
    cmd->add_flag("--force", args->force, "Fetch again even when the files are in the cache");
    cmd->callback([args, &exit_code] {
        run(*args);
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("download", setup);

}  // namespace
