// The public download API (include/mclip/model_file.h): published models by name.
#include "common/error.h"
#include "mclip/model_file.h"
#include "models/model_store.h"

namespace mclip {

std::vector<KnownModel> known_models() {
    std::vector<KnownModel> models;
    for (const RegisteredModel& m : registered_models()) models.push_back({m.name, m.arch, m.checkpoint.repo});
    return models;
}

DownloadedModel download_model(const std::string& name, const DownloadOptions& options) {
    const RegisteredModel* model = find_registered_model(name);
    if (!model) throw Error(ErrorCode::invalid_argument, "unknown model '" + name + "'; known models: " + registered_model_names());
    ModelDownloadOptions download;
    download.cache_dir = options.cache_dir;
    download.output = options.output;
    download.storage = parse_storage_type(options.weights);
    if (!options.endpoint.empty()) download.hub.endpoint = options.endpoint;
    download.hub.revision = options.revision;
    download.hub.force = options.force;
    download.convert = options.convert;
    download.hub.on_progress = options.on_progress;
    return download_model(*model, download);
}

}  // namespace mclip
