// mclip's model file: one GGUF file holding the inference-form weights, the architecture, the
// preprocessing, the logit scale and (optionally) the tokenizer. The keys are listed here, where
// they are written and read; docs/model-file.md describes them for other readers.
//
//   general.architecture   "mobileclip"             general.name        "MobileCLIP-S0"
//   general.file_type      llama.cpp ftype (0 f32, 1 f16, 7 q8_0, 32 bf16)
//   general.alignment      64
//   mclip.format_version   2                        mclip.arch          "mobileclip_s0" (config table name)
//   mclip.embed_dim        512                      mclip.logit_scale   log value, as trained
//   mclip.image.*          kind; MCi: depths[S], widths[S] (S stages, 4 or 5), mlp_ratio, head_dim,
//                          mixer_kernel, ffn_kernel, downsample_kernel, cpe_kernel,
//                          downsample_se[S-1] (bool), se_divisor, conv_exp_se_divisor, head_bias,
//                          attention_stages, attention_norm ("batch_norm"/"layer_norm"), norm_eps;
//                          ViT: width, layers, heads, ffn, stem_width, patch
//   mclip.text.*           kind, layers, width, heads, ffn, context_length, vocab_size, causal,
//                          mixer_kernel
//   mclip.preprocess.*     size (the image encoder's input side), resize_size, resize_mode
//                          ("shorter_side"/"squash"), interpolation ("bilinear"/"bicubic"),
//                          crop ("center"), mean[3], std[3]
//   mclip.source.sha256    SHA-256 of the checkpoint it was converted from
//   mclip.converter        "mclip 0.1.0"
//   mclip.content_sha256   SHA-256 of all other metadata and every tensor (GgufWriter::content_sha256)
//   tokenizer.ggml.model   "clip" with tokenizer.ggml.merges (rank order), bos/eos/padding ids
//
// Every architecture and preprocessing value is read from the file: a loaded model never consults
// the config table. Format 1 files (mclip before the keys above were complete) lack most of them
// and had mclip.image.input_size besides mclip.preprocess.size, and "resize" for the
// interpolation; what they lack is their mclip.arch's table entry, which their writer used.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "models/calibration.h"
#include "models/config.h"
#include "tensor/tensor.h"
#include "mclip/tokenizer.h"

namespace mclip {

inline constexpr const char* kModelArchitecture = "mobileclip";
inline constexpr int kModelFormatVersion = 2;

enum class StorageType { f32, f16, bf16, q8 };
inline constexpr StorageType kStorageTypes[] = {StorageType::f32, StorageType::f16, StorageType::bf16, StorageType::q8};
const char* to_string(StorageType type);
StorageType parse_storage_type(const std::string& text);  // "f32", "f16", "bf16", "q8"
// The storage a file declares by its general.file_type; Error(unsupported) for other values.
StorageType storage_type_from_file_type(uint32_t value);

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

// Checks that a GGUF file is an mclip model file and reads its config from its metadata; throws
// Error(invalid_input) naming the file and the key that is missing, mistyped or out of range.
ModelConfig model_file_config(const GgufFile& file);

// Whether a model file embeds a tokenizer (tokenizer.ggml.merges); throws Error(unsupported) for
// a tokenizer other than CLIP's BPE.
bool has_tokenizer(const GgufFile& file);
// The tokenizer embedded in a model file, or nullopt when it has none.
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
