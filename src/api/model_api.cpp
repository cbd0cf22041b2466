// The public C++ API (include/mclip/mclip.h): a thin layer over the engine's ClipModel, the
// zero-shot code and the kernels' registry.
#include "mclip/mclip.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "api/model_access.h"
#include "common/error.h"
#include "image/frame_convert.h"
#include "kernels/kernels.h"
#include "kernels/peak.h"
#include "kernels/profile.h"
#include "models/calibration.h"
#include "models/model.h"
#include "models/model_file.h"
#include "models/model_store.h"
#include "zeroshot/label_embeddings.h"
#include "zeroshot/zeroshot.h"

namespace mclip {
namespace {

Embeddings to_embeddings(const Tensor& t) {
    Embeddings e;
    e.rows = static_cast<int>(t.dim(0));
    e.dim = static_cast<int>(t.dim(1));
    e.values.assign(t.f32(), t.f32() + t.elements());
    return e;
}

ModelInfo describe(const ClipModel& model) {
    const ModelConfig& config = model.config();
    ModelInfo info;
    info.architecture = config.name;
    info.name = config.display_name;
    info.embed_dim = config.embed_dim;
    info.preprocess = config.preprocess;
    info.image_size = info.preprocess.size;
    info.context_length = config.text.context;
    info.logit_scale = model.logit_scale();
    info.precision = kernels::to_string(model.precision());
    info.backend = model.backend_name();
    info.threads = model.threads();
    info.has_image_encoder = model.has_image_encoder();
    info.has_text_encoder = model.has_text_encoder();
    info.has_tokenizer = model.has_tokenizer();
    if (const GgufFile* file = model.file()) {
        info.path = file->path();
        info.weights = weight_storage_of(*file);
        info.int8_calibrated = read_calibration(*file).has_value();
    } else {
        info.weights = "f32";
    }
    return info;
}

size_t image_floats(const ModelInfo& info) { return static_cast<size_t>(3) * info.image_size * info.image_size; }

}  // namespace

const char* version() { return MCLIP_VERSION_STRING; }

std::vector<std::string> precision_names() { return kernels::precision_names(); }

std::vector<BackendInfo> backends() {
    std::vector<BackendInfo> list;
    for (const kernels::BackendEntry& entry : kernels::registered_backends()) {
        BackendInfo info;
        info.name = entry.name;
        info.available = entry.available;
        info.unavailable_reason = entry.unavailable_reason;
        for (kernels::Precision p : entry.precisions) info.precisions.push_back(kernels::to_string(p));
        for (kernels::Precision p : entry.native_precisions) info.native_precisions.push_back(kernels::to_string(p));
        info.instruction_sets = entry.instruction_sets;
        list.push_back(std::move(info));
    }
    return list;
}

ModelParams model_default_params() { return {}; }

void normalize_rows(Embeddings& embeddings) {
    for (int r = 0; r < embeddings.rows; ++r) {
        float* row = embeddings.values.data() + static_cast<size_t>(r) * embeddings.dim;
        double norm = 0;
        for (int i = 0; i < embeddings.dim; ++i) norm += static_cast<double>(row[i]) * row[i];
        const float inverse = static_cast<float>(1.0 / std::max(std::sqrt(norm), 1e-12));
        for (int i = 0; i < embeddings.dim; ++i) row[i] *= inverse;
    }
}

Model::Model(std::unique_ptr<ClipModel> model, ModelInfo info)
    : model_(std::move(model)), info_(std::make_unique<ModelInfo>(std::move(info))) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path_or_name, const ModelParams& params) {
    ModelLoadOptions options;
    options.backend = params.backend;
    options.threads = params.threads;
    if (params.precision == "auto") {
        options.fastest_precision = true;
    } else {
        options.precision = kernels::parse_precision(params.precision);
    }
    std::unique_ptr<ClipModel> model = ClipModel::load(resolve_model_argument(path_or_name, params.on_download_progress), options);
    ModelInfo info = describe(*model);
    return Model(std::move(model), std::move(info));
}

const ModelInfo& Model::info() const { return *info_; }

void Model::preprocess(const Image& image, float* out) const {
    if (!out) throw Error(ErrorCode::invalid_argument, "preprocess: no output buffer");
    preprocess_image(image, info_->preprocess, out);
}

void Model::preprocess(const FrameView& frame, float* out) const { preprocess(frame_to_rgb(frame), out); }

Embeddings Model::embed_images(const float* pixels, int n) const {
    if (n < 0 || (n > 0 && !pixels)) throw Error(ErrorCode::invalid_argument, "embed_images: no pixels");
    const int size = info_->image_size;
    const Tensor images = Tensor::from_f32({n, 3, size, size}, {pixels, static_cast<size_t>(n) * image_floats(*info_)});
    return to_embeddings(model_->encode_images(images));
}

Embeddings Model::embed_images(std::span<const Image> images) const {
    std::vector<float> pixels(images.size() * image_floats(*info_));
    Preprocessor preprocessor(info_->preprocess);
    for (size_t i = 0; i < images.size(); ++i) preprocessor.run(images[i], pixels.data() + i * image_floats(*info_));
    return embed_images(pixels.data(), static_cast<int>(images.size()));
}

Embeddings Model::embed_frame(const FrameView& frame) const {
    const Image image = frame_to_rgb(frame);
    return embed_images(std::span<const Image>(&image, 1));
}

Embeddings Model::embed_image_files(const std::vector<std::string>& paths, const DecodeOptions& decode) const {
    std::vector<float> pixels(paths.size() * image_floats(*info_));
    Preprocessor preprocessor(info_->preprocess);
    for (size_t i = 0; i < paths.size(); ++i) preprocessor.run(decode_image_file(paths[i], decode), pixels.data() + i * image_floats(*info_));
    return embed_images(pixels.data(), static_cast<int>(paths.size()));
}

Embeddings Model::embed_texts(const std::vector<std::string>& texts) const { return to_embeddings(model_->encode_texts(texts)); }

Embeddings Model::embed_tokens(const int32_t* ids, int n) const {
    if (n < 0 || (n > 0 && !ids)) throw Error(ErrorCode::invalid_argument, "embed_tokens: no token ids");
    const int vocab = model_->config().text.vocab;
    for (size_t i = 0; i < static_cast<size_t>(n) * info_->context_length; ++i) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            throw Error(ErrorCode::invalid_argument, "token id " + std::to_string(ids[i]) + " is outside the vocabulary (0 to " +
                                                         std::to_string(vocab - 1) + ")");
        }
    }
    return to_embeddings(model_->encode_tokens(ids, n));
}

const Tokenizer& Model::tokenizer() const {
    if (const Tokenizer* tokenizer = model_->tokenizer()) return *tokenizer;
    throw Error(ErrorCode::invalid_input, info_->path + ": the model file has no tokenizer; convert it again with --vocab");
}

std::vector<int32_t> Model::tokenize(const std::vector<std::string>& texts) const {
    return tokenizer().context_batch(texts, info_->context_length);
}

LabelSet Model::labels(const std::vector<std::string>& labels, const LabelSetOptions& options) const {
    const std::vector<std::string> templates = options.templates.empty() ? default_templates() : options.templates;
    std::optional<std::filesystem::path> cache_dir;
    if (!options.cache_dir.empty()) cache_dir = options.cache_dir;
    const ClassEmbeddings classes = embed_labels(*model_, labels, templates, cache_dir);
    LabelSet set;
    set.labels = labels;
    set.templates = templates;
    set.classes = to_embeddings(classes.classes);
    set.from_cache = classes.from_cache;
    set.seconds = classes.seconds;
    set.cache_entry = classes.cache_entry.string();
    return set;
}

LabelSet Model::labels(const std::vector<std::string>& labels, const std::vector<std::string>& templates) const {
    LabelSetOptions options;
    options.templates = templates;
    return this->labels(labels, options);
}

Classification Model::classify(std::span<const float> image_embedding, const LabelSet& labels, int top_k, float threshold) const {
    const int dim = info_->embed_dim;
    if (labels.labels.empty() || labels.classes.rows != static_cast<int>(labels.labels.size()) || labels.classes.dim != dim) {
        throw Error(ErrorCode::invalid_argument, "classify: the label set does not belong to this model");
    }
    if (image_embedding.size() != static_cast<size_t>(dim)) {
        throw Error(ErrorCode::invalid_argument, "classify: the image embedding has " + std::to_string(image_embedding.size()) +
                                                     " values, this model's have " + std::to_string(dim));
    }
    if (top_k < 1) throw Error(ErrorCode::invalid_argument, "classify: top_k must be at least 1");
    if (!(threshold >= 0 && threshold <= 1)) throw Error(ErrorCode::invalid_argument, "classify: threshold must be between 0 and 1");
    const ZeroShotClassifier classifier(labels.labels, Tensor::from_f32({labels.classes.rows, dim}, labels.classes.values),
                                        info_->logit_scale);
    return classifier.classify(image_embedding.data(), top_k, threshold);
}

Classification Model::classify_file(const std::string& path, const LabelSet& labels, int top_k, float threshold) const {
    const Embeddings image = embed_image_files({path});
    return classify(image.row(0), labels, top_k, threshold);
}

namespace {

// Runs `loop` on `threads` threads at once for about `seconds`; multiply-adds per second.
double peak_rate(const kernels::PeakLoop& loop, int threads, double seconds) {
    using clock = std::chrono::steady_clock;
    // Rounds per thread for the wanted time, from a short timing on this thread.
    uint64_t rounds = 1 << 14;
    for (;;) {
        const auto start = clock::now();
        loop.run(rounds);
        const double took = std::chrono::duration<double>(clock::now() - start).count();
        if (took > 0.02) {
            rounds = static_cast<uint64_t>(static_cast<double>(rounds) * seconds / took) + 1;
            break;
        }
        rounds *= 2;
    }
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<uint64_t> done(threads, 0);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            ++ready;
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            done[t] = loop.run(rounds);
        });
    }
    while (ready.load() < threads) std::this_thread::yield();
    const auto start = clock::now();
    go.store(true, std::memory_order_release);
    for (auto& w : workers) w.join();
    const double took = std::chrono::duration<double>(clock::now() - start).count();
    uint64_t total = 0;
    for (uint64_t d : done) total += d;
    return static_cast<double>(total) / took;
}

}  // namespace

std::vector<PeakRate> measure_peak(int threads, double seconds) {
    threads = kernels::resolve_thread_count(threads);
    if (!(seconds > 0 && seconds <= 60)) throw Error(ErrorCode::invalid_argument, "peak: seconds must be in (0, 60]");
    std::vector<PeakRate> rates;
    // Named by kernels::to_string, the one list of precision names.
    const std::pair<kernels::Precision, kernels::PeakLoop> loops[] = {{kernels::Precision::f32, kernels::f32_peak_loop()},
                                                                      {kernels::Precision::bf16, kernels::bf16_peak_loop()},
                                                                      {kernels::Precision::int8, kernels::int8_peak_loop()}};
    for (const auto& [precision, loop] : loops) {
        PeakRate rate;
        rate.precision = kernels::to_string(precision);
        rate.threads = threads;
        rate.instructions = loop.instructions;
        rate.available = loop.run != nullptr;
        if (!rate.available) {
            rate.reason = "this CPU has no " + loop.missing;
        } else {
            rate.gmac_per_second = peak_rate(loop, threads, seconds) / 1e9;
        }
        rates.push_back(rate);
    }
    return rates;
}

void profile_set_enabled(bool enabled) { kernels::set_profiling(enabled); }
void profile_reset() { kernels::reset_profile(); }

std::vector<ProfileEntry> profile_results() {
    std::vector<ProfileEntry> entries;
    for (const kernels::ProfileEntry& e : kernels::profile_results()) entries.push_back({e.label, e.total_ms, e.calls});
    return entries;
}

}  // namespace mclip
