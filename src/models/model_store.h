// Models by name: Apple's checkpoints fetched from Hugging Face (io/download, io/model_registry),
// converted once into the cache's models folder, and found there afterwards. Every command's
// --model takes a file path or one of these names.
#pragma once

#include <filesystem>
#include <string>

#include "io/download.h"
#include "mclip/model_file.h"
#include "io/model_registry.h"
#include "models/model_file.h"

namespace mclip {

struct ModelDownloadOptions {
    std::filesystem::path cache_dir;   // empty: default_cache_dir()
    std::filesystem::path output;      // empty: <cache>/models/<name>[-<dtype>].gguf
    StorageType storage = StorageType::f32;
    HubOptions hub = HubOptions::from_environment();
    bool convert = true;               // false: only fetch the checkpoint and the vocabulary
};

// DownloadedModel is the public struct (mclip/model_file.h).

// "known models: mobileclip-s0, ..." for messages and help texts.
std::string registered_model_names();

// Where a registered model's file goes in the cache by default.
std::filesystem::path default_model_file(const std::filesystem::path& cache_dir, const RegisteredModel& model,
                                         StorageType storage);

// Fetches (or finds in the cache) the checkpoint and vocabulary, then converts them. On failure
// throws Error saying which URLs were tried, what failed, and how to place the files by hand; its
// code is the first failure's: network, or invalid_input for a file refused by its pinned digest.
// Progress goes to the log (info level) and the download progress bar.
DownloadedModel download_model(const RegisteredModel& model, const ModelDownloadOptions& options);

// A --model argument: an existing file is used as it is; a registered name ("mobileclip-s0")
// resolves to its converted file in the cache, downloading and converting it the first time.
// on_progress (optional) follows the download.
std::filesystem::path resolve_model_argument(const std::string& argument, const DownloadProgressCallback& on_progress = {});

}  // namespace mclip
