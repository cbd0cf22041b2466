// mclip: open-vocabulary image recognition with CLIP-family models (Apple's MobileCLIP), on the CPU.
//
//   mclip::Model model = mclip::Model::load("mobileclip-s0");          // a file or a model name
//   mclip::LabelSet labels = model.labels({"person", "forklift", "car", "computer"});
//   mclip::Embeddings image = model.embed_images({mclip::decode_image_file("photo.jpg")});
//   mclip::Classification c = model.classify(image.row(0), labels, 3, 0.6f);
//   std::printf("%s %.1f%%\n", c.label.c_str(), 100 * c.confidence);
//
// This is the C++ API; mclip/mclip_c.h is the same engine for C and other languages. Every front
// end (the mclip command, the server, the Python package) is built on these headers alone.
//
// Errors are thrown as mclip::Error (mclip/error.h): a code for programs, a message for people.
//
// Threads: a Model computes with the number of threads it was loaded with, on whichever thread
// calls it; models with different thread counts can live in one process. Every const member
// function of Model may be called from several threads at once: each call has its own working
// memory, so k concurrent calls use up to k × threads cores (for a fixed budget of cores, give
// each caller a model with its share; models of one file share its pages). Free functions are
// thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mclip/error.h"
#include "mclip/export.h"
#include "mclip/image.h"
#include "mclip/labels.h"
#include "mclip/log.h"
#include "mclip/preprocess.h"
#include "mclip/tokenizer.h"
#include "mclip/version.h"

namespace mclip {

class ClipModel;

// "0.1.0": the library's version (MCLIP_VERSION_STRING is the headers').
MCLIP_API const char* version();

// The compute precisions, by the names every option and report uses: "f32", "bf16", "int8".
MCLIP_API std::vector<std::string> precision_names();

// A kernel backend and what it can do on this CPU and build.
struct BackendInfo {
    std::string name;                     // "reference", "onednn"
    bool available = false;               // usable here
    std::string unavailable_reason;       // why not, when not available
    std::vector<std::string> precisions;  // precisions it runs (natively or emulated)
    std::vector<std::string> native_precisions;  // those with hardware support here
    std::vector<std::string> instruction_sets;   // what its kernels use here: "AVX512-BF16", "AMX", ...
};
MCLIP_API std::vector<BackendInfo> backends();

// This machine's peak multiply-add rate on `threads` threads (0: as for a model), measured by
// register-only loops for about `seconds` each: float32 FMA, and the bf16 and int8 dot products
// where the CPU has them (on AMX tiles where it has AMX, which oneDNN's kernels then use, else
// AVX512-BF16 vdpbf16ps and AVX512-VNNI vpdpbusd). Benchmarks divide an encoder's multiply-adds
// by these to say what fraction of the machine they use.
struct PeakRate {
    std::string precision;     // "f32", "bf16", "int8"
    bool available = false;    // false: the CPU lacks the instructions (see reason)
    std::string instructions;  // what the loop ran: "AVX512F FMA", "AVX2 FMA", "AVX512-BF16", "AVX512-VNNI",
                               // "AMX-BF16 tiles", "AMX-INT8 tiles"
    std::string reason;        // why not available
    int threads = 0;
    double gmac_per_second = 0;  // all threads together
};
MCLIP_API std::vector<PeakRate> measure_peak(int threads = 0, double seconds = 0.3);

// Progress of a download (a model requested by name the first time): bytes so far and the total
// (0 when the server does not say).
struct DownloadProgress {
    std::string file;
    uint64_t bytes = 0;
    uint64_t total = 0;
};
using DownloadProgressCallback = std::function<void(const DownloadProgress&)>;

struct ModelParams {
    std::string backend = "auto";  // "auto" (fastest available), or a name from backends()
    int threads = 0;               // 0: $OMP_NUM_THREADS when set, else one per core
    // Compute precision: "auto" (the fastest within the accuracy bounds: int8 for model files
    // calibrated for it, within 5e-2 of float32, on CPUs with AVX2 or newer (its other layers in
    // bf16 where that beats f32, else in f32); else bf16, within 2e-2, where it is faster than
    // f32: with AMX, or on AMD CPUs with AVX512-BF16; else f32), or a precision_names().
    std::string precision = "auto";
    // Called during the download of a model given by name (none: the download is quiet).
    DownloadProgressCallback on_download_progress;
};

MCLIP_API ModelParams model_default_params();

// What a loaded model is: read from its model file.
struct ModelInfo {
    std::string path;            // the model file
    std::string architecture;    // "mobileclip_s0"
    std::string name;            // "MobileCLIP-S0"
    int embed_dim = 0;
    int image_size = 0;          // the square input of the image encoder (preprocess.size)
    int context_length = 0;      // tokens per text
    PreprocessParams preprocess; // how images become input, from the model file
    float logit_scale = 0;       // min(exp(logit_scale), 100): the factor on cosine similarities
    std::string precision;       // the compute precision chosen at load
    std::string backend;
    int threads = 0;
    std::string weights;         // storage of the weights in the file: "f32", "f16", "bf16", "q8"
    bool has_image_encoder = true;  // a file imported from one Core ML package holds one encoder
    bool has_text_encoder = true;
    bool has_tokenizer = false;
    bool int8_calibrated = false;
};

// Rows of embeddings, row-major: values[row * dim + i].
struct Embeddings {
    int rows = 0;
    int dim = 0;
    std::vector<float> values;

    std::span<const float> row(int r) const { return {values.data() + static_cast<size_t>(r) * dim, static_cast<size_t>(dim)}; }
};

// Scales each row to unit length (v / max(|v|, 1e-12), as torch.nn.functional.normalize).
MCLIP_API void normalize_rows(Embeddings& embeddings);

// Where mclip caches downloads and text embeddings: $MCLIP_CACHE, else $XDG_CACHE_HOME/mclip,
// else $HOME/.cache/mclip.
MCLIP_API std::filesystem::path default_cache_dir();

struct LabelSetOptions {
    // Templates with "{}" for the label; empty: {"a photo of a {}."}.
    std::vector<std::string> templates;
    // Folder of the on-disk text-embedding cache (keyed by model, precision, kernels and prompts); empty:
    // no cache. default_cache_dir() + "/text-embeddings" is what the mclip command uses.
    std::string cache_dir;
};

// Class embeddings of a label set (the template ensemble of each label), ready to classify against.
struct LabelSet {
    std::vector<std::string> labels;
    std::vector<std::string> templates;
    Embeddings classes;        // [labels, embed_dim], unit length
    bool from_cache = false;   // read from the text-embedding cache rather than computed
    double seconds = 0;        // time to compute or read them
    std::string cache_entry;   // the cache file, when caching was on
};

struct Score {
    int index = 0;             // into LabelSet::labels
    std::string label;
    float probability = 0;     // softmax over the label set
    float logit = 0;           // logit_scale · cosine
    float cosine = 0;          // cosine similarity of the image and the class embedding
};

struct Classification {
    std::string label;         // the best label, or "unknown" below the threshold
    float confidence = 0;      // the best label's probability
    bool unknown = false;
    std::vector<Score> top;    // the top_k labels, best first
};

// A frame in memory, as cameras and video decoders deliver them.
enum class PixelFormat {
    rgb24,  // packed R, G, B
    rgba,   // packed R, G, B, A (alpha ignored), as a browser's ImageData
    bgr24,  // packed B, G, R, as OpenCV's Mat
    nv12,   // Y plane, then interleaved U, V at half resolution
};

enum class YuvMatrix { bt601, bt709 };

struct FrameView {
    PixelFormat format = PixelFormat::rgb24;
    int width = 0;
    int height = 0;
    const uint8_t* planes[2] = {nullptr, nullptr};  // nv12: Y, UV; others: the pixels
    size_t strides[2] = {0, 0};                    // bytes per row of each plane
    YuvMatrix matrix = YuvMatrix::bt601;           // nv12 only
    bool full_range = false;                       // nv12 only: 0-255 rather than 16-235 luma
};

class MCLIP_API Model {
public:
    // Loads a model file (GGUF), or a registered model name ("mobileclip-s0"), which is
    // downloaded and converted into the cache the first time. Encoders are built when first used.
    static Model load(const std::string& path_or_name, const ModelParams& params = model_default_params());
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const ModelInfo& info() const;
    std::string architecture() const { return info().architecture; }
    int embed_dim() const { return info().embed_dim; }
    int image_size() const { return info().image_size; }
    float logit_scale() const { return info().logit_scale; }

    // Images as the model sees them: float32 [3, image_size, image_size] per image, written to
    // out (room for 3 · image_size² floats), with the model file's preprocessing.
    void preprocess(const Image& image, float* out) const;
    void preprocess(const FrameView& frame, float* out) const;

    // Embeddings as the reference's encode_image / encode_text return them (not normalized).
    // pixels: n preprocessed images, float32 [n, 3, image_size, image_size].
    Embeddings embed_images(const float* pixels, int n) const;
    Embeddings embed_images(std::span<const Image> images) const;
    Embeddings embed_frame(const FrameView& frame) const;
    // Decodes each file (errors name it) and embeds them all.
    Embeddings embed_image_files(const std::vector<std::string>& paths, const DecodeOptions& decode = {}) const;
    Embeddings embed_texts(const std::vector<std::string>& texts) const;
    // ids: n rows of context_length token ids.
    Embeddings embed_tokens(const int32_t* ids, int n) const;

    // The tokenizer in the model file; throws Error(invalid_input) when the file has none.
    const Tokenizer& tokenizer() const;
    // context_length ids per text (cut and zero-padded), row after row.
    std::vector<int32_t> tokenize(const std::vector<std::string>& texts) const;

    LabelSet labels(const std::vector<std::string>& labels, const LabelSetOptions& options = {}) const;
    LabelSet labels(const std::vector<std::string>& labels, const std::vector<std::string>& templates) const;
    // Softmax over the label set of one image embedding; the best is "unknown" when its
    // probability is below threshold (0 never says unknown). top_k is clamped to the label count.
    Classification classify(std::span<const float> image_embedding, const LabelSet& labels, int top_k = 1,
                            float threshold = 0) const;
    Classification classify_file(const std::string& path, const LabelSet& labels, int top_k = 1, float threshold = 0) const;

private:
    friend struct ModelAccess;
    explicit Model(std::unique_ptr<ClipModel> model, ModelInfo info);
    std::unique_ptr<ClipModel> model_;
    std::unique_ptr<ModelInfo> info_;
};

// Per-operator time of the encoders (mclip bench --profile): off by default; while on, every
// convolution, linear and attention call is timed.
struct ProfileEntry {
    std::string op;        // "conv 1x1", "attention", ...
    double total_ms = 0;
    int64_t calls = 0;
};
MCLIP_API void profile_set_enabled(bool enabled);
MCLIP_API void profile_reset();
// Totals since the last reset, largest first.
MCLIP_API std::vector<ProfileEntry> profile_results();

}  // namespace mclip
