// mclip: open-vocabulary image recognition with Apple's MobileCLIP models.
//
//   mclip::Model model = mclip::Model::load("mobileclip_s0.gguf");
//   mclip::LabelSet labels = model.labels({"person", "forklift", "car", "computer"});
//   for (const mclip::Score& s : model.classify_file("photo.jpg", labels, 3)) {
//       std::printf("%s %.1f%%\n", s.label.c_str(), 100 * s.probability);
//   }
//
// Errors are thrown as mclip::Error (see mclip/error.h) with a message for the user.
// A Model is not thread-safe: use one per thread, or guard it. Models share the memory-mapped
// weights of one file through the page cache.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mclip/error.h"
#include "mclip/version.h"

namespace mclip {

class ClipModel;

struct ModelParams {
    std::string backend = "auto";  // "auto" (fastest available), "reference" or "onednn"
    int threads = 0;               // 0: one per core
    // Compute precision: "auto" (the fastest within the accuracy bounds: int8 for model files
    // calibrated for it, within 5e-2 of float32, on CPUs with AVX512-VNNI and AVX512-BF16 or AMX;
    // else bf16, within 2e-2, on CPUs with AVX512-BF16 or AMX; else f32), "f32", "bf16" or "int8".
    std::string precision = "auto";
};

ModelParams model_default_params();

// Rows of embeddings, row-major: values[row * dim + i].
struct Embeddings {
    int rows = 0;
    int dim = 0;
    std::vector<float> values;
};

// Class embeddings of a label set (template ensemble), ready to classify against.
struct LabelSet {
    std::vector<std::string> labels;
    Embeddings classes;  // unit length
};

struct Score {
    std::string label;
    float probability = 0;  // softmax over the label set
    float logit = 0;        // logit scale · cosine similarity
};

class Model {
public:
    static Model load(const std::string& path, const ModelParams& params = model_default_params());
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    std::string architecture() const;  // "mobileclip_s0", ...
    int embed_dim() const;
    int image_size() const;            // the square input the image encoder takes
    float logit_scale() const;         // min(exp(logit_scale), 100)

    // Unnormalized embeddings, as the reference's encode_image / encode_text return them.
    Embeddings embed_image_files(const std::vector<std::string>& paths) const;
    // pixels: n preprocessed images, float32 [n, 3, image_size, image_size].
    Embeddings embed_images(const float* pixels, int n) const;
    Embeddings embed_texts(const std::vector<std::string>& texts) const;

    // Templates use "{}" for the label; empty means {"a photo of a {}."}.
    LabelSet labels(const std::vector<std::string>& labels, const std::vector<std::string>& templates = {}) const;
    // The top_k labels of an image, best first.
    std::vector<Score> classify_file(const std::string& path, const LabelSet& labels, int top_k = 1) const;

private:
    explicit Model(std::unique_ptr<ClipModel> model);
    std::unique_ptr<ClipModel> model_;
};

}  // namespace mclip
