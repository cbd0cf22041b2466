// `mclip export coreml --labels`: the image package becomes a classifier whose head reproduces
// mclip's own zero-shot probabilities, declared as coremltools declares a classifier, and whose
// encoder imports back unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "coreml/import.h"
#include "coreml/package.h"
#include "mclip/coreml.h"
#include "mclip/image.h"
#include "mclip/mclip.h"
#include "models/encoder.h"
#include "support/fixtures.h"

using namespace mclip;
using namespace mclip::testing;
namespace spec = mclip::coreml::spec;
namespace fs = std::filesystem;

namespace {

const spec::Operation* find_op(const spec::Block& block, const std::string& type) {
    for (const auto& op : block.operations()) {
        if (op.type() == type) return &op;
    }
    return nullptr;
}

const spec::Operation* producer_of(const spec::Block& block, const std::string& name) {
    for (const auto& op : block.operations()) {
        for (const auto& output : op.outputs()) {
            if (output.name() == name) return &op;
        }
    }
    return nullptr;
}

std::string bound_name(const spec::Operation& op, const std::string& param) { return op.inputs().at(param).arguments(0).name(); }

TEST(CoreMLExportClassifier, HeadReproducesZeroShotProbabilities) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path model_file = test_models_dir() / "mobileclip_s0.gguf";
    ASSERT_TRUE(fs::exists(model_file)) << model_file;
    const std::vector<std::string> labels = {"rocket", "cat", "dog", "a cup of coffee"};
    const std::vector<std::string> templates = {"a photo of a {}.", "a picture of a {}."};
    const fs::path dir = make_temp_dir("coreml_classifier");
    const fs::path out = dir / "S0Classifier.mlpackage";
    CoreMLExportOptions options;
    options.compute = "f32";
    options.weights = "f32";
    options.labels = labels;
    options.templates = templates;
    export_coreml(model_file, out, options);

    // Declared as a classifier: Vision reads classLabel and classLabel_probs.
    const coreml::Package package = coreml::read_package(out);
    const auto& description = package.model.description();
    EXPECT_EQ(description.predictedfeaturename(), "classLabel");
    EXPECT_EQ(description.predictedprobabilitiesname(), "classLabel_probs");
    ASSERT_EQ(description.output_size(), 3);
    EXPECT_TRUE(description.output(0).type().has_stringtype());
    EXPECT_TRUE(description.output(1).type().has_dictionarytype());
    EXPECT_TRUE(description.output(1).type().dictionarytype().has_stringkeytype());
    EXPECT_EQ(description.output(2).name(), "embedding");
    const spec::Block& block = coreml::main_block(package.model);
    ASSERT_EQ(block.outputs_size(), 3);
    EXPECT_EQ(block.outputs(0), "classLabel");
    EXPECT_EQ(block.outputs(1), "classLabel_probs");

    // The classify op takes the labels as a literal list of strings, in order.
    const spec::Operation* classify = find_op(block, "classify");
    ASSERT_NE(classify, nullptr);
    const spec::Value& classes = classify->inputs().at("classes").arguments(0).value();
    ASSERT_TRUE(classes.type().has_listtype());
    EXPECT_EQ(classes.type().listtype().length().constant().size(), labels.size());
    ASSERT_EQ(classes.immediatevalue().list().values_size(), static_cast<int>(labels.size()));
    for (size_t i = 0; i < labels.size(); ++i) {
        EXPECT_EQ(classes.immediatevalue().list().values(static_cast<int>(i)).immediatevalue().tensor().strings().values(0), labels[i]);
    }
    ASSERT_EQ(classify->outputs_size(), 2);
    EXPECT_TRUE(classify->outputs(1).type().has_dictionarytype());

    // The head, evaluated from the package's own constants on the package's own encoder,
    // gives the probabilities mclip's classify gives for a fixture image.
    const spec::Operation* softmax = producer_of(block, bound_name(*classify, "probabilities"));
    ASSERT_NE(softmax, nullptr);
    ASSERT_EQ(softmax->type(), "softmax");
    const spec::Operation* head = producer_of(block, bound_name(*softmax, "x"));
    ASSERT_NE(head, nullptr);
    ASSERT_EQ(head->type(), "linear");
    const Tensor weights = coreml::dense_constant(package, *producer_of(block, bound_name(*head, "weight")));
    ASSERT_EQ(weights.shape(), (Shape{static_cast<int64_t>(labels.size()), 512}));

    const coreml::ImportedEncoder encoder = coreml::import_image_encoder(package);
    ModelParams params;
    params.precision = "f32";
    const Model model = Model::load(model_file.string(), params);
    const int size = model.info().image_size;
    Tensor pixels = Tensor::zeros_f32({1, 3, size, size});
    model.preprocess(decode_image_file(fixtures / "images/rocket.jpg"), pixels.f32());
    const Tensor embedding =
        make_mci_image_encoder(encoder.config, WeightSource::from_map(encoder.tensors, "package"), GraphOptions{})->encode(pixels);
    const Embeddings original = model.embed_images(pixels.f32(), 1);
    double worst_embedding = 0, norm = 0;
    for (int i = 0; i < 512; ++i) {
        worst_embedding = std::max(worst_embedding, std::fabs(static_cast<double>(embedding.f32()[i]) - original.values[i]));
        norm += static_cast<double>(embedding.f32()[i]) * embedding.f32()[i];
    }
    EXPECT_LT(worst_embedding, 1e-4) << "the classifier's encoder imports back as the model's";

    std::vector<double> logits(labels.size());
    double largest = -1e30;
    for (size_t c = 0; c < labels.size(); ++c) {
        double dot = 0;
        for (int i = 0; i < 512; ++i) dot += weights.f32()[c * 512 + i] * embedding.f32()[i];
        logits[c] = dot / std::sqrt(norm);
        largest = std::max(largest, logits[c]);
    }
    double total = 0;
    for (double& l : logits) total += (l = std::exp(l - largest));
    const Classification expected = model.classify(original.row(0), model.labels(labels, templates), static_cast<int>(labels.size()));
    ASSERT_EQ(expected.top.size(), labels.size());
    for (const Score& score : expected.top) {
        EXPECT_NEAR(logits[score.index] / total, score.probability, 1e-4) << score.label;
    }
    std::printf("classifier head: top label %s at %.4f (mclip %.4f)\n", expected.label.c_str(), logits[expected.top[0].index] / total,
                expected.top[0].probability);
    fs::remove_all(dir);
}

TEST(CoreMLExportClassifier, LabelsNeedTheImageEncoder) {
    MCLIP_FIXTURES_OR_SKIP(fixtures);
    const fs::path dir = make_temp_dir("coreml_classifier_bad");
    CoreMLExportOptions options;
    options.encoder = "text";
    options.labels = {"cat", "dog"};
    EXPECT_THROW(export_coreml(test_models_dir() / "mobileclip_s0.gguf", dir / "x.mlpackage", options), Error);
    EXPECT_TRUE(fs::is_empty(dir)) << "nothing written";
    fs::remove_all(dir);
}

}  // namespace
