#include "models/model_store.h"

#include <optional>

#include "common/error.h"
#include "common/log.h"
#include "models/convert.h"

namespace mclip {
#ifdef MCLIP_HAVE_DOWNLOADS
namespace {

struct Wanted {
    HubFile file;
    HubOptions options;
    std::filesystem::path destination;
    std::string url;
    std::string failure;  // empty when fetched
};

// `vocabulary` is vocab.json; the tokenizer finds merges.txt beside it.
std::string convert_command(const RegisteredModel& model, const Wanted& checkpoint, const Wanted& vocabulary,
                            const std::filesystem::path& output, StorageType storage) {
    return "mclip convert --arch " + model.arch + " --in '" + checkpoint.destination.string() + "' --vocab '" +
           vocabulary.destination.string() + "' --out '" + output.string() + "' --dtype " + to_string(storage);
}

// What was tried, what failed, and how to put the files in place without the network.
std::string failure_report(const RegisteredModel& model, const ModelDownloadOptions& options, const std::vector<Wanted>& wanted,
                           const std::filesystem::path& cache_dir, const std::filesystem::path& output) {
    std::string text = "could not download " + model.name + " from " + options.hub.endpoint + " (revision " +
                       options.hub.revision + "):\n";
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
            text += "      SHA-256 " + item.file.sha256 + ", the only content mclip accepts (check with sha256sum)\n";
        }
    }
    text += "then run `mclip download " + model.name + " --cache-dir '" + cache_dir.string() + "'" +
            (options.hub.revision == "main" ? "" : " --revision " + options.hub.revision) +
            "` again (files already in the cache are used as they are), or convert directly:\n  " +
            convert_command(model, wanted[0], wanted[1], output, options.storage);
    return text;
}

}  // namespace
#endif

std::string registered_model_names() {
    std::string names;
    for (const auto& model : registered_models()) names += (names.empty() ? "" : ", ") + model.name;
    return names;
}

std::filesystem::path default_model_file(const std::filesystem::path& cache_dir, const RegisteredModel& model,
                                         StorageType storage) {
    // "mobileclip_s0.gguf" for f32, "mobileclip_s0-q8.gguf" otherwise.
    std::string stem;
    for (char c : model.name) stem += c == '-' ? '_' : c;
    if (storage != StorageType::f32) stem += std::string("-") + to_string(storage);
    return cache_dir / "models" / (stem + ".gguf");
}

#ifdef MCLIP_HAVE_DOWNLOADS
DownloadedModel download_model(const RegisteredModel& model, const ModelDownloadOptions& options) {
    const std::filesystem::path cache_dir = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
    const std::filesystem::path output = options.output.empty() ? default_model_file(cache_dir, model, options.storage) : options.output;

    // The revision names a revision of the model's repository; the vocabulary, pinned by its
    // digests, always comes from its repository's main branch. Its two files share one cache
    // folder, where the tokenizer reads them as a pair.
    HubOptions vocabulary_options = options.hub;
    vocabulary_options.revision = "main";
    const ClipVocabularyFiles& vocabulary = clip_vocabulary_files();
    std::vector<Wanted> wanted;
    for (const auto& [file, file_options] : {std::pair(model.checkpoint, options.hub),
                                              std::pair(vocabulary.vocab_json, vocabulary_options),
                                              std::pair(vocabulary.merges, vocabulary_options)}) {
        wanted.push_back({file, file_options, hub_cache_path(cache_dir, file_options, file), hub_file_url(file_options, file), {}});
    }
    // The first failure's kind (network, or a refused file) is the whole report's.
    std::optional<ErrorCode> failure_code;
    for (auto& item : wanted) {
        try {
            const FetchedFile fetched = fetch_hub_file(item.file, item.destination, item.options);
            if (fetched.from_cache) {
                log_info(item.destination.string() + ": in the cache");
            } else {
                // An unverified download was already reported by a warning.
                log_info(item.destination.string() + ": downloaded" +
                         (fetched.checksum_source.empty() ? "" : ", SHA-256 verified against " + fetched.checksum_source));
            }
        } catch (const Error& e) {
            item.failure = e.what();
            if (!failure_code) failure_code = e.code();
        }
    }
    if (failure_code) throw Error(*failure_code, failure_report(model, options, wanted, cache_dir, output));

    DownloadedModel result{wanted[0].destination, wanted[1].destination, {}};
    if (!options.convert) return result;
    ConvertOptions convert;
    convert.arch = model.arch;
    convert.weights = to_string(options.storage);
    convert.vocabulary = result.vocabulary;
    if (output.has_parent_path()) std::filesystem::create_directories(output.parent_path());
    const auto summary = convert_checkpoint(result.checkpoint, output, convert);
    log_info("converted " + model.name + ": " + std::to_string(summary.output_tensors) + " tensors, " +
             std::to_string(summary.output_bytes >> 20) + " MiB (" + to_string(options.storage) + ")");
    result.model_file = output;
    return result;
}
#endif

std::filesystem::path resolve_model_argument(const std::string& argument, const DownloadProgressCallback& on_progress) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(argument, ec)) return argument;
    const RegisteredModel* model = find_registered_model(argument);
    if (!model) {
        throw Error(ErrorCode::io, argument + ": no such model file, and not a model name (" + registered_model_names() + ")");
    }
    const std::filesystem::path cached = default_model_file(default_cache_dir(), *model, StorageType::f32);
    if (std::filesystem::is_regular_file(cached, ec)) return cached;
#ifdef MCLIP_HAVE_DOWNLOADS
    log_warning(model->name + " is not in the cache yet: downloading and converting it once into " + cached.string());
    ModelDownloadOptions options;
    options.hub.on_progress = on_progress;
    return download_model(*model, options).model_file;
#else
    throw Error(ErrorCode::unsupported, model->name + " is not in the cache (" + cached.string() +
                                            ") and this build of mclip has no downloads (MCLIP_WITH_DOWNLOADS=OFF): "
                                            "convert the checkpoint with `mclip convert` and pass the file");
#endif
}

}  // namespace mclip
