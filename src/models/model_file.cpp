#include "models/model_file.h"

#include "common/error.h"
#include "mclip/version.h"

namespace mclip {

const char* to_string(StorageType type) {
    switch (type) {
        case StorageType::f32: return "f32";
        case StorageType::f16: return "f16";
        case StorageType::bf16: return "bf16";
        case StorageType::q8: return "q8";
    }
    return "?";
}

StorageType parse_storage_type(const std::string& text) {
    if (text == "f32") return StorageType::f32;
    if (text == "f16") return StorageType::f16;
    if (text == "bf16") return StorageType::bf16;
    if (text == "q8" || text == "q8_0") return StorageType::q8;
    throw Error(ErrorCode::invalid_argument, "unknown dtype '" + text + "' (expected f32, f16, bf16 or q8)");
}

namespace {

// llama.cpp's general.file_type values for the precisions mclip writes.
uint32_t file_type(StorageType storage) {
    switch (storage) {
        case StorageType::f32: return 0;
        case StorageType::f16: return 1;
        case StorageType::q8: return 7;
        case StorageType::bf16: return 32;
    }
    return 0;
}

constexpr const char* kTokenizerModel = "clip";

// Tensors under this size gain nothing from narrower storage and keep full precision.
constexpr int64_t kMinQuantizedElements = 4096;

std::vector<int32_t> as_i32(const std::array<int, 4>& a) { return {a[0], a[1], a[2], a[3]}; }

void write_config(GgufWriter& w, const ModelConfig& c) {
    w.set_string("mclip.arch", c.name);
    w.set_u32("mclip.embed_dim", static_cast<uint32_t>(c.embed_dim));
    w.set_string("mclip.image.kind", to_string(c.image.kind));
    w.set_u32("mclip.image.input_size", static_cast<uint32_t>(c.image.input_size));
    if (c.image.kind == ImageEncoderKind::mci) {
        w.set_i32_array("mclip.image.depths", as_i32(c.image.mci.depths));
        w.set_i32_array("mclip.image.widths", as_i32(c.image.mci.widths));
        w.set_u32("mclip.image.mlp_ratio", static_cast<uint32_t>(c.image.mci.mlp_ratio));
        w.set_u32("mclip.image.head_dim", static_cast<uint32_t>(c.image.mci.head_dim));
    } else {
        w.set_u32("mclip.image.width", static_cast<uint32_t>(c.image.vit.width));
        w.set_u32("mclip.image.layers", static_cast<uint32_t>(c.image.vit.layers));
        w.set_u32("mclip.image.heads", static_cast<uint32_t>(c.image.vit.heads));
        w.set_u32("mclip.image.ffn", static_cast<uint32_t>(c.image.vit.ffn));
        w.set_u32("mclip.image.patch", static_cast<uint32_t>(c.image.vit.patch));
    }
    w.set_string("mclip.text.kind", to_string(c.text.kind));
    w.set_u32("mclip.text.layers", static_cast<uint32_t>(c.text.layers));
    w.set_u32("mclip.text.width", static_cast<uint32_t>(c.text.width));
    w.set_u32("mclip.text.heads", static_cast<uint32_t>(c.text.heads));
    w.set_u32("mclip.text.ffn", static_cast<uint32_t>(c.text.ffn));
    w.set_u32("mclip.text.context_length", static_cast<uint32_t>(c.text.context));
    w.set_u32("mclip.text.vocab_size", static_cast<uint32_t>(c.text.vocab));
    w.set_bool("mclip.text.causal", c.text.causal);
    w.set_u32("mclip.preprocess.size", static_cast<uint32_t>(c.preprocess.size));
    w.set_string("mclip.preprocess.resize", c.preprocess.resize);
    w.set_string("mclip.preprocess.crop", c.preprocess.crop);
    w.set_f32_array("mclip.preprocess.mean", {c.preprocess.mean.begin(), c.preprocess.mean.end()});
    w.set_f32_array("mclip.preprocess.std", {c.preprocess.std.begin(), c.preprocess.std.end()});
}

}  // namespace

namespace {

// A convolution kernel [out, in, kh, kw] viewed as the matrix [out, in·kh·kw] it is.
Shape as_matrix(const Shape& shape) { return {shape[0], shape_elements(shape) / shape[0]}; }

}  // namespace

GgmlType storage_for_tensor(const Tensor& tensor, StorageType storage) {
    if (storage == StorageType::f32 || tensor.rank() < 2 || tensor.elements() < kMinQuantizedElements) return GgmlType::f32;
    switch (storage) {
        case StorageType::f16: return GgmlType::f16;
        case StorageType::bf16: return GgmlType::bf16;
        case StorageType::q8:
            // Q8_0 blocks run along each row (per output channel); rows too short or ragged stay f32.
            return as_matrix(tensor.shape())[1] % kQ8BlockSize == 0 ? GgmlType::q8_0 : GgmlType::f32;
        case StorageType::f32: break;
    }
    return GgmlType::f32;
}

Tensor stored_shape(const Tensor& tensor, StorageType storage) {
    if (tensor.rank() == 4 && storage_for_tensor(tensor, storage) == GgmlType::q8_0) return tensor.reshaped(as_matrix(tensor.shape()));
    return tensor;
}

Tensor stored_values(const Tensor& tensor, StorageType storage) {
    Tensor values = tensor.clone();
    float* v = values.f32();
    const int64_t count = values.elements();
    switch (storage_for_tensor(tensor, storage)) {
        case GgmlType::f16:
            for (int64_t i = 0; i < count; ++i) v[i] = f16_to_f32(f32_to_f16(v[i]));
            break;
        case GgmlType::bf16:
            for (int64_t i = 0; i < count; ++i) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
            break;
        case GgmlType::q8_0: {
            const std::vector<std::byte> blocks = quantize_q8_0(v, static_cast<uint64_t>(count));
            dequantize_q8_0(blocks.data(), static_cast<uint64_t>(count), v);
            break;
        }
        default: break;
    }
    return values;
}

void write_model_file(const std::filesystem::path& path, const ModelFileContents& contents) {
    const ModelConfig& c = *contents.config;
    GgufWriter w;
    w.set_string("general.architecture", kModelArchitecture);
    w.set_string("general.name", c.display_name);
    w.set_u32("general.file_type", file_type(contents.storage));
    if (contents.storage == StorageType::q8) w.set_u32("general.quantization_version", 2);
    w.set_u32("mclip.format_version", kModelFormatVersion);
    write_config(w, c);
    const auto scale = contents.tensors.find("logit_scale");
    if (scale == contents.tensors.end()) throw Error(ErrorCode::internal, "model contents lack logit_scale");
    w.set_f32("mclip.logit_scale", scale->second.f32()[0]);
    if (!contents.source_sha256.empty()) w.set_string("mclip.source.sha256", contents.source_sha256);
    w.set_string("mclip.converter", std::string("mclip ") + MCLIP_VERSION_STRING);
    if (contents.tokenizer) {
        w.set_string("tokenizer.ggml.model", kTokenizerModel);
        w.set_string_array("tokenizer.ggml.merges", contents.tokenizer->merges());
        w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(contents.tokenizer->start_id()));
        w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(contents.tokenizer->end_id()));
        // CLIP pads with id 0, an ordinary token ("!"), not a dedicated padding symbol.
        w.set_u32("tokenizer.ggml.padding_token_id", 0);
    }
    if (contents.calibration) write_calibration(w, *contents.calibration);
    for (const auto& [name, tensor] : contents.tensors) {
        if (name == "logit_scale") continue;
        w.add_tensor(name, stored_shape(tensor, contents.storage), storage_for_tensor(tensor, contents.storage));
    }
    // Last, so the digest covers everything else in the file.
    w.set_string("mclip.content_sha256", w.content_sha256());
    w.write(path);
}

std::optional<Tokenizer> load_tokenizer(const GgufFile& file) {
    if (!file.has("tokenizer.ggml.merges")) return std::nullopt;
    const std::string model = file.get_string_or("tokenizer.ggml.model", kTokenizerModel);
    if (model != kTokenizerModel) {
        throw Error(ErrorCode::unsupported, file.path() + ": tokenizer '" + model + "' is not CLIP's BPE");
    }
    return Tokenizer::from_merges(file.get_string_array("tokenizer.ggml.merges"));
}

const ModelConfig& model_file_config(const GgufFile& file) {
    const std::string architecture = file.get_string_or("general.architecture", "");
    if (architecture != kModelArchitecture) {
        throw Error(ErrorCode::invalid_input, file.path() + ": not an mclip model file (general.architecture is '" +
                                                  architecture + "', expected '" + kModelArchitecture + "')");
    }
    const int64_t version = file.get_int("mclip.format_version");
    if (version > kModelFormatVersion) {
        throw Error(ErrorCode::unsupported, file.path() + ": model file format " + std::to_string(version) +
                                                " is newer than this mclip understands (" + std::to_string(kModelFormatVersion) + ")");
    }
    const ModelConfig& config = model_config(file.get_string("mclip.arch"));
    auto check = [&](const std::string& key, int64_t expected) {
        if (file.get_int(key) != expected) {
            throw Error(ErrorCode::invalid_input, file.path() + ": " + key + " is " + std::to_string(file.get_int(key)) +
                                                      " but " + config.name + " has " + std::to_string(expected));
        }
    };
    check("mclip.embed_dim", config.embed_dim);
    check("mclip.image.input_size", config.image.input_size);
    check("mclip.text.layers", config.text.layers);
    check("mclip.text.width", config.text.width);
    check("mclip.text.context_length", config.text.context);
    return config;
}

}  // namespace mclip
