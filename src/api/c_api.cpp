// The C API (include/mclip/mclip_c.h) over the C++ API. Every entry point catches everything:
// no exception crosses into C. Handles are checked against a registry of live ones before use, so
// a null, freed or foreign pointer is an error status, never a dereference.
#include "mclip/mclip_c.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "mclip/mclip.h"

struct mclip_model {
    mclip::Model model;
    // The strings mclip_model_info points to.
    std::string architecture, name, precision, backend;
};

struct mclip_labels {
    mclip::LabelSet set;
};

namespace {

thread_local std::string g_last_error;

// The live handles of each kind; a lookup takes the lock, use does not (a handle must not be freed
// while another thread uses it, as with any C object).
template <typename Handle>
class Registry {
public:
    void add(const Handle* h) {
        std::lock_guard lock(mutex_);
        live_.insert(h);
    }
    bool remove(const Handle* h) {
        std::lock_guard lock(mutex_);
        return live_.erase(h) == 1;
    }
    bool contains(const Handle* h) {
        std::lock_guard lock(mutex_);
        return live_.count(h) == 1;
    }

private:
    std::mutex mutex_;
    std::unordered_set<const Handle*> live_;
};

Registry<mclip_model>& models() {
    static Registry<mclip_model> registry;
    return registry;
}

Registry<mclip_labels>& label_sets() {
    static Registry<mclip_labels> registry;
    return registry;
}

mclip_status fail(mclip_status status, std::string message) {
    g_last_error = std::move(message);
    return status;
}

mclip_status status_of(mclip::ErrorCode code) {
    switch (code) {
        case mclip::ErrorCode::invalid_argument: return MCLIP_ERROR_INVALID_ARGUMENT;
        case mclip::ErrorCode::invalid_input: return MCLIP_ERROR_INVALID_INPUT;
        case mclip::ErrorCode::io: return MCLIP_ERROR_IO;
        case mclip::ErrorCode::unsupported: return MCLIP_ERROR_UNSUPPORTED;
        case mclip::ErrorCode::network: return MCLIP_ERROR_NETWORK;
        case mclip::ErrorCode::internal: return MCLIP_ERROR_INTERNAL;
    }
    return MCLIP_ERROR_INTERNAL;
}

// Runs `body` (which returns a status), turning every exception into a status and a message.
template <typename Body>
mclip_status guarded(Body&& body) {
    g_last_error.clear();
    try {
        return body();
    } catch (const mclip::Error& e) {
        return fail(status_of(e.code()), e.what());
    } catch (const std::bad_alloc&) {
        return fail(MCLIP_ERROR_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        return fail(MCLIP_ERROR_INTERNAL, e.what());
    } catch (...) {
        return fail(MCLIP_ERROR_INTERNAL, "unknown error");
    }
}

mclip_status check_model(const mclip_model* model) {
    if (!model) return fail(MCLIP_ERROR_INVALID_HANDLE, "the model handle is null");
    if (!models().contains(model)) return fail(MCLIP_ERROR_INVALID_HANDLE, "the model handle is not a live model (freed, or never loaded)");
    return MCLIP_OK;
}

mclip_status check_labels(const mclip_labels* labels) {
    if (!labels) return fail(MCLIP_ERROR_INVALID_HANDLE, "the label set handle is null");
    if (!label_sets().contains(labels)) return fail(MCLIP_ERROR_INVALID_HANDLE, "the label set handle is not a live label set");
    return MCLIP_OK;
}

mclip_status check_output(const void* out, size_t capacity, size_t needed, const char* what) {
    if (!out) return fail(MCLIP_ERROR_INVALID_ARGUMENT, std::string(what) + ": the output buffer is null");
    if (capacity < needed) {
        return fail(MCLIP_ERROR_BUFFER_TOO_SMALL, std::string(what) + ": the output buffer holds " + std::to_string(capacity) +
                                                      " values, " + std::to_string(needed) + " are needed");
    }
    return MCLIP_OK;
}

// Copies embeddings into the caller's buffer after checking its capacity.
mclip_status write_embeddings(const mclip::Embeddings& e, float* out, size_t capacity, const char* what) {
    if (mclip_status s = check_output(out, capacity, e.values.size(), what); s != MCLIP_OK) return s;
    std::copy(e.values.begin(), e.values.end(), out);
    return MCLIP_OK;
}

std::vector<std::string> strings(const char* const* items, int count, const char* what) {
    if (count < 0 || (count > 0 && !items)) throw mclip::Error(mclip::ErrorCode::invalid_argument, std::string(what) + ": no strings given");
    std::vector<std::string> list;
    for (int i = 0; i < count; ++i) {
        if (!items[i]) throw mclip::Error(mclip::ErrorCode::invalid_argument, std::string(what) + ": string " + std::to_string(i) + " is null");
        list.emplace_back(items[i]);
    }
    return list;
}

}  // namespace

extern "C" {

const char* mclip_status_string(mclip_status status) {
    switch (status) {
        case MCLIP_OK: return "ok";
        case MCLIP_ERROR_INVALID_ARGUMENT: return "invalid argument";
        case MCLIP_ERROR_INVALID_INPUT: return "invalid input";
        case MCLIP_ERROR_IO: return "input/output error";
        case MCLIP_ERROR_UNSUPPORTED: return "unsupported";
        case MCLIP_ERROR_NETWORK: return "network error";
        case MCLIP_ERROR_INTERNAL: return "internal error";
        case MCLIP_ERROR_INVALID_HANDLE: return "invalid handle";
        case MCLIP_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
        case MCLIP_ERROR_OUT_OF_MEMORY: return "out of memory";
    }
    return "unknown status";
}

const char* mclip_last_error(void) { return g_last_error.c_str(); }

const char* mclip_version(void) { return mclip::version(); }

void mclip_log_set_callback(mclip_log_callback callback, void* user_data) {
    if (!callback) {
        mclip::log_set_sink(nullptr);
        return;
    }
    mclip::log_set_sink([callback, user_data](mclip::LogLevel level, std::string_view message) {
        const std::string text(message);
        callback(static_cast<mclip_log_level>(level), text.c_str(), user_data);
    });
}

void mclip_log_set_level(mclip_log_level level) {
    mclip::log_set_level(static_cast<mclip::LogLevel>(std::clamp(static_cast<int>(level), 0, 3)));
}

mclip_model_params mclip_model_default_params(void) { return {"auto", 0, "auto"}; }

mclip_status mclip_model_load(const char* path_or_name, const mclip_model_params* params, mclip_model** out) {
    return guarded([&] {
        if (!path_or_name) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_model_load: the path is null");
        if (!out) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_model_load: out is null");
        const mclip_model_params given = params ? *params : mclip_model_default_params();
        mclip::ModelParams p = mclip::model_default_params();
        if (given.backend) p.backend = given.backend;
        if (given.precision) p.precision = given.precision;
        if (given.threads < 0) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_model_load: threads must be 0 or more");
        p.threads = given.threads;
        auto* model = new mclip_model{mclip::Model::load(path_or_name, p), {}, {}, {}, {}};
        const mclip::ModelInfo& info = model->model.info();
        model->architecture = info.architecture;
        model->name = info.name;
        model->precision = info.precision;
        model->backend = info.backend;
        models().add(model);
        *out = model;
        return MCLIP_OK;
    });
}

void mclip_model_free(mclip_model* model) {
    if (model && models().remove(model)) delete model;
}

mclip_status mclip_model_get_info(const mclip_model* model, mclip_model_info* out) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (!out) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_model_get_info: out is null");
        const mclip::ModelInfo& info = model->model.info();
        mclip_model_info c{};
        c.architecture = model->architecture.c_str();
        c.name = model->name.c_str();
        c.precision = model->precision.c_str();
        c.backend = model->backend.c_str();
        c.embed_dim = info.embed_dim;
        c.image_size = info.image_size;
        c.context_length = info.context_length;
        c.threads = info.threads;
        c.logit_scale = info.logit_scale;
        std::copy(info.preprocess.mean.begin(), info.preprocess.mean.end(), c.mean);
        std::copy(info.preprocess.std.begin(), info.preprocess.std.end(), c.std);
        c.has_tokenizer = info.has_tokenizer ? 1 : 0;
        *out = c;
        return MCLIP_OK;
    });
}

mclip_status mclip_embed_image_file(const mclip_model* model, const char* path, float* out, size_t capacity) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (!path) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_embed_image_file: the path is null");
        if (mclip_status s = check_output(out, capacity, static_cast<size_t>(model->model.embed_dim()), "mclip_embed_image_file"); s != MCLIP_OK) {
            return s;
        }
        return write_embeddings(model->model.embed_image_files({path}), out, capacity, "mclip_embed_image_file");
    });
}

mclip_status mclip_embed_image_memory(const mclip_model* model, const void* bytes, size_t size, float* out, size_t capacity) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (!bytes || size == 0) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_embed_image_memory: no image bytes");
        if (mclip_status s = check_output(out, capacity, static_cast<size_t>(model->model.embed_dim()), "mclip_embed_image_memory"); s != MCLIP_OK) {
            return s;
        }
        const mclip::Image image = mclip::decode_image_memory({static_cast<const uint8_t*>(bytes), size}, "image in memory");
        return write_embeddings(model->model.embed_images(std::span<const mclip::Image>(&image, 1)), out, capacity, "mclip_embed_image_memory");
    });
}

mclip_status mclip_embed_image_rgb(const mclip_model* model, const uint8_t* rgb, int width, int height, size_t stride, float* out,
                                   size_t capacity) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (mclip_status s = check_output(out, capacity, static_cast<size_t>(model->model.embed_dim()), "mclip_embed_image_rgb"); s != MCLIP_OK) {
            return s;
        }
        mclip::FrameView frame;
        frame.format = mclip::PixelFormat::rgb24;
        frame.width = width;
        frame.height = height;
        frame.planes[0] = rgb;
        frame.strides[0] = stride;
        return write_embeddings(model->model.embed_frame(frame), out, capacity, "mclip_embed_image_rgb");
    });
}

mclip_status mclip_embed_pixels(const mclip_model* model, const float* pixels, int count, float* out, size_t capacity) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (count < 0) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_embed_pixels: count is negative");
        const size_t needed = static_cast<size_t>(count) * model->model.embed_dim();
        if (mclip_status s = check_output(out, capacity, needed, "mclip_embed_pixels"); s != MCLIP_OK) return s;
        return write_embeddings(model->model.embed_images(pixels, count), out, capacity, "mclip_embed_pixels");
    });
}

mclip_status mclip_embed_texts(const mclip_model* model, const char* const* texts, int count, float* out, size_t capacity) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        const std::vector<std::string> list = strings(texts, count, "mclip_embed_texts");
        const size_t needed = list.size() * model->model.embed_dim();
        if (mclip_status s = check_output(out, capacity, needed, "mclip_embed_texts"); s != MCLIP_OK) return s;
        return write_embeddings(model->model.embed_texts(list), out, capacity, "mclip_embed_texts");
    });
}

mclip_status mclip_tokenize(const mclip_model* model, const char* text, int32_t* ids, size_t capacity) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (!text) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_tokenize: the text is null");
        const std::vector<int32_t> context = model->model.tokenize({text});
        if (mclip_status s = check_output(ids, capacity, context.size(), "mclip_tokenize"); s != MCLIP_OK) return s;
        std::copy(context.begin(), context.end(), ids);
        return MCLIP_OK;
    });
}

mclip_status mclip_labels_create(const mclip_model* model, const char* const* labels, int label_count, const char* const* templates,
                                 int template_count, const char* cache_dir, mclip_labels** out) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (!out) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_labels_create: out is null");
        mclip::LabelSetOptions options;
        if (templates && template_count > 0) options.templates = strings(templates, template_count, "mclip_labels_create templates");
        if (cache_dir) options.cache_dir = cache_dir;
        auto* set = new mclip_labels{model->model.labels(strings(labels, label_count, "mclip_labels_create labels"), options)};
        label_sets().add(set);
        *out = set;
        return MCLIP_OK;
    });
}

void mclip_labels_free(mclip_labels* labels) {
    if (labels && label_sets().remove(labels)) delete labels;
}

mclip_status mclip_labels_count(const mclip_labels* labels, int* count) {
    return guarded([&] {
        if (mclip_status s = check_labels(labels); s != MCLIP_OK) return s;
        if (!count) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_labels_count: count is null");
        *count = static_cast<int>(labels->set.labels.size());
        return MCLIP_OK;
    });
}

mclip_status mclip_labels_name(const mclip_labels* labels, int index, const char** name) {
    return guarded([&] {
        if (mclip_status s = check_labels(labels); s != MCLIP_OK) return s;
        if (!name) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_labels_name: name is null");
        if (index < 0 || index >= static_cast<int>(labels->set.labels.size())) {
            return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_labels_name: index " + std::to_string(index) + " is outside the label set");
        }
        *name = labels->set.labels[static_cast<size_t>(index)].c_str();
        return MCLIP_OK;
    });
}

mclip_status mclip_classify(const mclip_model* model, const mclip_labels* labels, const float* image_embedding, size_t embedding_size,
                            int top_k, float threshold, mclip_score* top, size_t capacity, mclip_classification* out) {
    return guarded([&] {
        if (mclip_status s = check_model(model); s != MCLIP_OK) return s;
        if (mclip_status s = check_labels(labels); s != MCLIP_OK) return s;
        if (!image_embedding) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_classify: the image embedding is null");
        if (!out) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_classify: out is null");
        if (top_k < 1) return fail(MCLIP_ERROR_INVALID_ARGUMENT, "mclip_classify: top_k must be at least 1");
        const size_t entries = std::min(static_cast<size_t>(top_k), labels->set.labels.size());
        if (mclip_status s = check_output(top, capacity, entries, "mclip_classify"); s != MCLIP_OK) return s;
        const mclip::Classification c =
            model->model.classify({image_embedding, embedding_size}, labels->set, top_k, threshold);
        for (size_t i = 0; i < c.top.size(); ++i) top[i] = {c.top[i].index, c.top[i].probability, c.top[i].logit, c.top[i].cosine};
        out->label = c.unknown ? -1 : c.top.front().index;
        out->confidence = c.confidence;
        out->top_count = static_cast<int>(c.top.size());
        return MCLIP_OK;
    });
}

}  // extern "C"
