// Threads belong to the model: a model loaded with N threads computes with N threads on whatever
// thread calls it, models with different counts coexist in one process, and concurrent calls on
// one model give the results serial calls give.
//
// The number of threads that work is measured, not asked (support/thread_usage.h).
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "io/safetensors.h"
#include "mclip/error.h"
#include "models/model.h"
#include "support/fixtures.h"
#include "support/thread_usage.h"

using namespace mclip;
using mclip::testing::thread_cpu_seconds;
using mclip::testing::threads_working_during;
namespace fs = std::filesystem;

namespace {

fs::path s0_path() { return mclip::testing::test_models_dir() / "mobileclip_s0.gguf"; }

class ModelThreads : public ::testing::Test {
protected:
    void SetUp() override {
        auto fixtures = mclip::testing::fixtures_dir();
        if (!fixtures) {
            if (mclip::testing::running_under_ci()) FAIL() << "reference fixtures not found; required under CI";
            GTEST_SKIP() << "reference fixtures not found (set MCLIP_FIXTURES to ../shared/fixtures)";
        }
        images_ = read_safetensors(*fixtures / "mobileclip_s0" / "expected.safetensors").tensors.at("image.input");
    }

    // Encodes the fixture images until the calling thread has spent 0.4 s of CPU time.
    static void encode_for_a_while(const ClipModel& model, const Tensor& images) {
        const double start = thread_cpu_seconds();
        do {
            model.encode_images(images);
        } while (thread_cpu_seconds() - start < 0.4);
    }

    Tensor images_;
};

TEST_F(ModelThreads, OneThreadModelRunsOneThreadOnAnotherCaller) {
    ModelLoadOptions options;
    options.threads = 1;
    const auto model = ClipModel::load(s0_path(), options);
    EXPECT_EQ(model->threads(), 1);
    model->prepare_image_encoder();
    EXPECT_EQ(threads_working_during([&] { encode_for_a_while(*model, images_); }), 1);
}

TEST_F(ModelThreads, TwoModelsKeepTheirOwnCounts) {
    if (omp_get_num_procs() < 2) GTEST_SKIP() << "this machine has " << omp_get_num_procs() << " core; the test needs 2";
    ModelLoadOptions one, two, all;
    one.threads = 1;
    two.threads = 2;
    const auto single = ClipModel::load(s0_path(), one);
    const auto pair = ClipModel::load(s0_path(), two);
    // 0 after 1 means one per core again, not the count the previous model used.
    const auto every_core = ClipModel::load(s0_path(), all);
    EXPECT_EQ(pair->threads(), 2);
    EXPECT_EQ(every_core->threads(), omp_get_num_procs());

    const int caller_threads = omp_get_max_threads();
    EXPECT_EQ(threads_working_during([&] { encode_for_a_while(*pair, images_); }), 2);
    EXPECT_EQ(threads_working_during([&] { encode_for_a_while(*single, images_); }), 1);
    EXPECT_EQ(threads_working_during([&] { encode_for_a_while(*pair, images_); }), 2);
    // A call on this thread leaves this thread's own count as it was.
    single->encode_images(images_);
    EXPECT_EQ(omp_get_max_threads(), caller_threads);
}

// A batch is split between the model's threads, each encoding its rows alone; where OpenMP
// gives the split fewer threads than the model has (inside another active parallel region,
// which does not nest here), every row is still encoded. Rows match the same images encoded one
// by one to float32 rounding (oneDNN's blocking depends on the batch size).
TEST_F(ModelThreads, BatchSplitBetweenThreadsMatchesRowsEncodedAlone) {
    if (omp_get_num_procs() < 2) GTEST_SKIP() << "this machine has " << omp_get_num_procs() << " core; the test needs 2";
    ModelLoadOptions options;
    options.threads = 2;
    const auto model = ClipModel::load(s0_path(), options);
    const int64_t n = images_.dim(0);
    ASSERT_GE(n, 3) << "the fixture batch should leave the two threads unequal shares";
    const int64_t image_values = images_.elements() / n;
    std::vector<Tensor> alone;
    for (int64_t i = 0; i < n; ++i) {
        alone.push_back(model->encode_images(Tensor::from_f32({1, images_.dim(1), images_.dim(2), images_.dim(3)},
                                                              {images_.f32() + i * image_values, static_cast<size_t>(image_values)})));
    }
    const Tensor split = model->encode_images(images_);
    const int levels = omp_get_max_active_levels();
    omp_set_max_active_levels(1);
    Tensor nested;
#pragma omp parallel num_threads(2)
    {
#pragma omp master
        nested = model->encode_images(images_);
    }
    omp_set_max_active_levels(levels);
    for (const Tensor* batch : {&split, static_cast<const Tensor*>(&nested)}) {
        ASSERT_EQ(batch->dim(0), n);
        const int64_t dim = batch->dim(1);
        for (int64_t i = 0; i < n; ++i) {
            double diff = 0, norm = 0;
            for (int64_t j = 0; j < dim; ++j) {
                const double expected = alone[i].f32()[j];
                diff += (batch->f32()[i * dim + j] - expected) * (batch->f32()[i * dim + j] - expected);
                norm += expected * expected;
            }
            EXPECT_LE(std::sqrt(diff / norm), 1e-5) << (batch == &split ? "split" : "nested") << " row " << i;
        }
    }
}

TEST_F(ModelThreads, ConcurrentCallsOnOneModelMatchSerialCalls) {
    ModelLoadOptions options;
    options.threads = 1;
    const auto model = ClipModel::load(s0_path(), options);
    const std::vector<std::string> prompts = {"a photo of a cat", "a diagram", "two dogs on a beach", "a rocket"};
    // Nothing is built yet: the concurrent first calls also race to build the encoders and the
    // tokenizer.
    constexpr int kCallers = 4;
    std::vector<Tensor> image_results(kCallers), text_results(kCallers);
    std::vector<std::thread> callers;
    for (int i = 0; i < kCallers; ++i) {
        callers.emplace_back([&, i] {
            image_results[i] = model->encode_images(images_);
            text_results[i] = model->encode_texts({prompts[i]});
        });
    }
    for (auto& caller : callers) caller.join();

    const Tensor serial_images = model->encode_images(images_);
    for (int i = 0; i < kCallers; ++i) {
        ASSERT_EQ(image_results[i].shape(), serial_images.shape()) << "caller " << i;
        EXPECT_EQ(std::memcmp(image_results[i].data(), serial_images.data(), serial_images.bytes()), 0) << "caller " << i;
        const Tensor serial_text = model->encode_texts({prompts[i]});
        ASSERT_EQ(text_results[i].shape(), serial_text.shape()) << "caller " << i;
        EXPECT_EQ(std::memcmp(text_results[i].data(), serial_text.data(), serial_text.bytes()), 0) << "caller " << i;
    }
}

TEST_F(ModelThreads, DefaultCountFollowsOmpNumThreads) {
    const char* saved = std::getenv("OMP_NUM_THREADS");
    const std::string previous = saved ? saved : "";
    setenv("OMP_NUM_THREADS", "1,1", 1);
    EXPECT_EQ(ClipModel::load(s0_path(), ModelLoadOptions{})->threads(), 1);
    setenv("OMP_NUM_THREADS", "not a number", 1);
    EXPECT_EQ(ClipModel::load(s0_path(), ModelLoadOptions{})->threads(), omp_get_num_procs());
    unsetenv("OMP_NUM_THREADS");
    EXPECT_EQ(ClipModel::load(s0_path(), ModelLoadOptions{})->threads(), omp_get_num_procs());
    if (saved) setenv("OMP_NUM_THREADS", previous.c_str(), 1);
}

TEST_F(ModelThreads, NegativeCountIsRefused) {
    ModelLoadOptions options;
    options.threads = -1;
    try {
        ClipModel::load(s0_path(), options);
        FAIL() << "a negative thread count was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("thread count"), std::string::npos) << e.what();
    }
}

}  // namespace
