// The public C++ API (include/mclip/mclip.h): a thin layer over ClipModel and the zero-shot code.
#include "mclip/mclip.h"

#include <cstring>

#include "common/error.h"
#include "models/model.h"
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

}  // namespace

ModelParams model_default_params() { return {}; }

Model::Model(std::unique_ptr<ClipModel> model) : model_(std::move(model)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, const ModelParams& params) {
    ModelLoadOptions options;
    options.backend = params.backend;
    options.threads = params.threads;
    if (params.precision == "auto") {
        options.fastest_precision = true;
    } else {
        options.precision = kernels::parse_precision(params.precision);
    }
    return Model(ClipModel::load(path, options));
}

std::string Model::architecture() const { return model_->config().name; }
int Model::embed_dim() const { return model_->config().embed_dim; }
int Model::image_size() const { return model_->config().image.input_size; }
float Model::logit_scale() const { return model_->logit_scale(); }

Embeddings Model::embed_image_files(const std::vector<std::string>& paths) const {
    const std::vector<std::filesystem::path> files(paths.begin(), paths.end());
    return to_embeddings(model_->encode_images(model_->load_images(files)));
}

Embeddings Model::embed_images(const float* pixels, int n) const {
    const int size = image_size();
    if (n < 0 || (n > 0 && !pixels)) throw Error(ErrorCode::invalid_argument, "embed_images: no pixels");
    const Tensor images = Tensor::from_f32({n, 3, size, size}, {pixels, static_cast<size_t>(n) * 3 * size * size});
    return to_embeddings(model_->encode_images(images));
}

Embeddings Model::embed_texts(const std::vector<std::string>& texts) const {
    return to_embeddings(model_->encode_texts(texts));
}

LabelSet Model::labels(const std::vector<std::string>& labels, const std::vector<std::string>& templates) const {
    const ClassEmbeddings classes =
        embed_labels(*model_, labels, templates.empty() ? default_templates() : templates, std::nullopt);
    return {labels, to_embeddings(classes.classes)};
}

std::vector<Score> Model::classify_file(const std::string& path, const LabelSet& labels, int top_k) const {
    if (labels.labels.empty() || labels.classes.rows != static_cast<int>(labels.labels.size()) || labels.classes.dim != embed_dim()) {
        throw Error(ErrorCode::invalid_argument, "classify_file: the label set does not belong to this model");
    }
    const Tensor classes = Tensor::from_f32({labels.classes.rows, labels.classes.dim}, labels.classes.values);
    const ZeroShotClassifier classifier(labels.labels, classes, logit_scale());
    const Tensor image = model_->encode_images(model_->load_images({path}));
    const Classification c = classifier.classify(image.f32(), top_k, 0.0f);
    std::vector<Score> scores;
    for (const auto& s : c.top) scores.push_back({labels.labels[s.index], s.probability, s.logit});
    return scores;
}

}  // namespace mclip
