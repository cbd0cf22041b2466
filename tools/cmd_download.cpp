// `mclip download NAME`: fetch Apple's checkpoint and the CLIP vocabulary from Hugging Face into
// the cache, then convert them into a model file and print its path. docs/download.md has details.
#include <cstdio>

#include "command.h"
#include "mclip/log.h"
#include "mclip/model_file.h"

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

std::string known_model_names() {
    std::string names;
    for (const mclip::KnownModel& model : mclip::known_models()) names += (names.empty() ? "" : ", ") + model.name;
    return names;
}

void run(const DownloadArgs& args) {
    mclip::DownloadOptions options;
    options.endpoint = args.endpoint;
    options.revision = args.revision;
    options.force = args.force;
    options.weights = args.dtype;
    options.cache_dir = args.cache_dir;
    options.output = args.output;
    options.convert = !args.no_convert;
    // This command reports what it does; other commands download quietly.
    if (mclip::log_level() == mclip::LogLevel::warning) mclip::log_set_level(mclip::LogLevel::info);
    const mclip::DownloadedModel downloaded = mclip::download_model(args.name, options);
    if (args.no_convert) {
        std::printf("%s\n%s\n", downloaded.checkpoint.string().c_str(), downloaded.vocabulary.string().c_str());
        return;
    }
    std::printf("%s\n", downloaded.model_file.string().c_str());
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<DownloadArgs>();
    auto* cmd = app.add_subcommand("download", "Download a MobileCLIP model from Hugging Face and convert it");
    cmd->add_option("name", args->name, "Model: " + known_model_names() + " (mobileclip_s0 style names work too)")->required();
    cmd->add_option("--cache-dir", args->cache_dir,
                    "Cache folder (default: $MCLIP_CACHE, $XDG_CACHE_HOME/mclip or ~/.cache/mclip)");
    cmd->add_option("--out", args->output, "Model file to write (default: <cache>/models/<name>.gguf)");
    cmd->add_option("--dtype", args->dtype, "Weight storage")->capture_default_str()->check(CLI::IsMember(mclip::weight_storage_names()));
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
