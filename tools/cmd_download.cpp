// `mclip download NAME`: fetch Apple's checkpoint and the CLIP vocabulary from Hugging Face into
// the cache, then convert them into a model file and print its path. docs/download.md has details.
#include <cstdio>

#include "command.h"
#include "common/error.h"
#include "common/log.h"
#include "models/model_store.h"

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

void run(const DownloadArgs& args) {
    const mclip::RegisteredModel* model = mclip::find_registered_model(args.name);
    if (!model) {
        throw mclip::Error(mclip::ErrorCode::invalid_argument,
                           "unknown model '" + args.name + "'; known models: " + mclip::registered_model_names());
    }
    mclip::ModelDownloadOptions options;
    if (!args.endpoint.empty()) options.hub.endpoint = args.endpoint;
    options.hub.revision = args.revision;
    options.hub.force = args.force;
    options.storage = mclip::parse_storage_type(args.dtype);
    options.cache_dir = args.cache_dir;
    options.output = args.output;
    options.convert = !args.no_convert;
    // This command reports what it does; other commands download quietly.
    if (mclip::log_level() == mclip::LogLevel::warning) mclip::log_set_level(mclip::LogLevel::info);
    const mclip::DownloadedModel downloaded = mclip::download_model(*model, options);
    if (args.no_convert) {
        std::printf("%s\n%s\n", downloaded.checkpoint.string().c_str(), downloaded.vocabulary.string().c_str());
        return;
    }
    std::printf("%s\n", downloaded.model_file.string().c_str());
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<DownloadArgs>();
    auto* cmd = app.add_subcommand("download", "Download a MobileCLIP model from Hugging Face and convert it");
    cmd->add_option("name", args->name, "Model: " + mclip::registered_model_names() + " (mobileclip_s0 style names work too)")->required();
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
