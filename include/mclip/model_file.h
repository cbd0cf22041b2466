// Model files: what one holds (inspect), making one from a checkpoint (convert), and fetching
// published models by name (download). A model file is one GGUF file with the folded weights, every
// hyperparameter, the preprocessing, the logit scale and the tokenizer (docs/model-file.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mclip/export.h"
#include "mclip/mclip.h"

namespace mclip {

struct ModelFileInfo {
    std::string path;
    std::string format;             // "gguf"
    uint32_t format_version = 0;    // GGUF version
    uint64_t file_size = 0;
    std::string architecture;       // "mobileclip_s0"
    std::string name;               // "MobileCLIP-S0"
    std::string weights;            // storage of the large weights: "f32", "f16", "bf16", "q8"
    uint64_t parameters = 0;
    uint64_t tensor_bytes = 0;
    size_t tensor_count = 0;
    std::map<std::string, size_t> tensor_types;  // "f32" → count, ...
    bool has_tokenizer = false;
    bool int8_calibrated = false;
    size_t calibrated_layers = 0;
    std::string calibration_source;  // "3 images, 127 prompts"
    // Every metadata key with its value as JSON text; long arrays (the tokenizer's merges) are
    // summarized as {"length": N, "first": [...]}.
    std::vector<std::pair<std::string, std::string>> metadata;
};

// Reads a model file's header (not its weights). Throws Error(invalid_input) for a file that is
// not an mclip model file.
MCLIP_API ModelFileInfo inspect_model_file(const std::filesystem::path& path);

// The architectures convert knows ("mobileclip_s0", ...) and the weight storages it writes.
MCLIP_API std::vector<std::string> architecture_names();
MCLIP_API std::vector<std::string> weight_storage_names();

struct ConvertOptions {
    std::string arch;                    // one of architecture_names()
    std::string weights = "f32";         // one of weight_storage_names()
    std::string checkpoint_key;          // state dict nested under this key (PyTorch files); empty: detect
    std::filesystem::path vocabulary;    // BPE vocabulary to embed; empty: none
    // int8 calibration: activation ranges measured on these images and prompts (the prompts need
    // the vocabulary); no images: the file gets no calibration.
    std::vector<std::filesystem::path> calibration_images;
    std::vector<std::string> calibration_prompts;
};

struct ConvertSummary {
    size_t input_tensors = 0;
    size_t output_tensors = 0;
    uint64_t output_bytes = 0;
    std::string source_sha256;
};

// Reads a checkpoint (.safetensors or PyTorch .pt, by content), folds it into inference form,
// checks every tensor against the architecture and writes the model file; the output appears
// only when everything succeeded.
MCLIP_API ConvertSummary convert_checkpoint(const std::filesystem::path& input, const std::filesystem::path& output,
                                            const ConvertOptions& options);

struct KnownModel {
    std::string name;          // "mobileclip-s0"
    std::string architecture;  // "mobileclip_s0"
    std::string repository;    // where it is published: "apple/MobileCLIP-S0"
};
// The models download_model and Model::load know by name.
MCLIP_API std::vector<KnownModel> known_models();

struct DownloadOptions {
    std::filesystem::path cache_dir;   // empty: default_cache_dir()
    std::filesystem::path output;      // empty: <cache>/models/<name>[-<weights>].gguf
    std::string weights = "f32";
    std::string revision = "main";     // branch, tag or commit of the repositories
    std::string endpoint;              // hub address; empty: $HF_ENDPOINT or https://huggingface.co
    bool force = false;                // fetch again even when the files are in the cache
    bool convert = true;               // false: only fetch the checkpoint and the vocabulary
    DownloadProgressCallback on_progress;
};

struct DownloadedModel {
    std::filesystem::path checkpoint;
    std::filesystem::path vocabulary;
    std::filesystem::path model_file;  // empty when not converted
};

// Fetches (or finds in the cache) a registered model's checkpoint and vocabulary, verified against
// the digests mclip pins, then converts them. Throws Error saying which URLs were tried and how to
// place the files by hand, with the first failure's code: network, or invalid_input for a file
// refused by its pinned digest; Error(invalid_argument) for an unknown name.
MCLIP_API DownloadedModel download_model(const std::string& name, const DownloadOptions& options = {});

}  // namespace mclip
