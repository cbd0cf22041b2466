// mclip's model file: one GGUF file holding the inference-form weights, the architecture, the
// preprocessing, the logit scale and (optionally) the tokenizer. The keys are listed here, where
// they are written and read; docs/model-file.md describes them for other readers.
//
//   general.architecture   "mobileclip"             general.name        "MobileCLIP-S0"
//   general.file_type      llama.cpp ftype (0 f32, 1 f16, 7 q8_0, 32 bf16)
//   general.alignment      64
//   mclip.format_version   1                        mclip.arch          "mobileclip_s0" (config table name)
//   mclip.embed_dim        512                      mclip.logit_scale   log value, as trained
//   mclip.image.*          encoder kind, input size, depths/widths or ViT dims
//   mclip.text.*           encoder kind, layers, width, heads, ffn, context, vocab, causal
//   mclip.preprocess.*     size, resize ("bilinear"), crop ("center"), mean[3], std[3]
//   mclip.source.sha256    SHA-256 of the checkpoint it was converted from
//   mclip.converter        "mclip 0.1.0"
//   mclip.content_sha256   SHA-256 of all other metadata and every tensor (GgufWriter::content_sha256)
//   tokenizer.ggml.model   "clip" with tokenizer.ggml.merges (rank order), bos/eos/padding ids
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "models/calibration.h"
#include "models/config.h"
#include "tensor/tensor.h"
#include "tokenizer/tokenizer.h"

namespace mclip {

inline constexpr const char* kModelArchitecture = "mobileclip";
inline constexpr int kModelFormatVersion = 1;

enum class StorageType { f32, f16, bf16, q8 };
const char* to_string(StorageType type);
StorageType parse_storage_type(const std::string& text);  // "f32", "f16", "bf16", "q8"

struct ModelFileContents {
    const ModelConfig* config = nullptr;
    TensorMap tensors;                 // inference form, including "logit_scale"
    StorageType storage = StorageType::f32;
    std::string source_sha256;         // empty if unknown
    const Tokenizer* tokenizer = nullptr;  // null: no tokenizer in the file
    const Calibration* calibration = nullptr;  // null: no int8 calibration in the file
};

// Writes the model file atomically. Large weight matrices are stored in `storage`; biases,
// norms, scales and other small tensors stay float32.
void write_model_file(const std::filesystem::path& path, const ModelFileContents& contents);

// Checks that a GGUF file is an mclip model file and returns its config (from the config table,
// after checking that the file's stored dimensions agree with it).
const ModelConfig& model_file_config(const GgufFile& file);

// The tokenizer embedded in a model file (tokenizer.ggml.merges), or nullopt when it has none.
std::optional<Tokenizer> load_tokenizer(const GgufFile& file);

// The storage type a tensor gets in a file of the given storage type.
GgmlType storage_for_tensor(const Tensor& tensor, StorageType storage);
// The tensor as stored: Q8_0 convolution kernels [out, in, kh, kw] are stored as the matrix
// [out, in·kh·kw] so their quantization blocks run along whole output channels; readers
// (WeightSource) give them back their 4-D shape.
Tensor stored_shape(const Tensor& tensor, StorageType storage);
// The float32 values a reader gets back from the tensor stored as `storage` (rounded to f16,
// bf16 or Q8_0 steps).
Tensor stored_values(const Tensor& tensor, StorageType storage);

}  // namespace mclip
