#include "zeroshot/label_embeddings.h"

#include <chrono>

#include "common/error.h"
#include "common/log.h"
#include "kernels/kernels.h"
#include "zeroshot/text_cache.h"
#include "zeroshot/zeroshot.h"

namespace mclip {

std::string embedding_numerics(const ClipModel& model) {
    std::string numerics = std::string(kernels::to_string(model.precision())) + " " + model.backend_name();
    for (const kernels::BackendEntry& entry : kernels::registered_backends()) {
        if (entry.name != model.backend_name()) continue;
        for (const std::string& instruction_set : entry.instruction_sets) numerics += " " + instruction_set;
    }
    return numerics;
}

ClassEmbeddings embed_labels(const ClipModel& model, const std::vector<std::string>& labels,
                             const std::vector<std::string>& templates, const std::optional<std::filesystem::path>& cache_dir) {
    if (labels.empty()) throw Error(ErrorCode::invalid_argument, "the label list is empty");
    validate_templates(templates);
    const auto start = std::chrono::steady_clock::now();
    const std::vector<std::string> prompts = expand_prompts(labels, templates);
    const int64_t dim = model.config().embed_dim;

    ClassEmbeddings result;
    Tensor prompt_embeddings;
    std::optional<TextEmbeddingCache> cache;
    std::string key;
    if (cache_dir) {
        cache.emplace(*cache_dir);
        key = TextEmbeddingCache::key(model.content_hash(), embedding_numerics(model), prompts);
        result.cache_entry = cache->entry_path(key);
        if (auto hit = cache->load(key, static_cast<int64_t>(prompts.size()), dim)) {
            prompt_embeddings = std::move(*hit);
            result.from_cache = true;
        }
    }
    if (!result.from_cache) {
        prompt_embeddings = model.encode_texts(prompts);
        if (cache) {
            try {
                cache->store(key, prompt_embeddings);
            } catch (const Error& e) {
                // A read-only or full cache directory costs speed next time, not this answer.
                log_warning(std::string("cannot write the text embedding cache: ") + e.what());
            }
        }
    }
    result.classes = ensemble_class_embeddings(prompt_embeddings, static_cast<int>(labels.size()), static_cast<int>(templates.size()));
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace mclip
