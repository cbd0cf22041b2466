#include "models/model_file.h"

#include <cmath>
#include <type_traits>

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

}  // namespace

StorageType storage_type_from_file_type(uint32_t value) {
    for (StorageType type : kStorageTypes) {
        if (file_type(type) == value) return type;
    }
    throw Error(ErrorCode::unsupported, "general.file_type " + std::to_string(value) + " is not one mclip writes (0, 1, 7 or 32)");
}

namespace {

constexpr const char* kTokenizerModel = "clip";
constexpr const char* kCenterCrop = "center";

// Tensors under this size gain nothing from narrower storage and keep full precision.
constexpr int64_t kMinQuantizedElements = 4096;

// The most stages an MCi encoder may declare (timm's have 4 or 5).
constexpr size_t kMaxMciStages = 8;

std::vector<int32_t> as_i32(const std::vector<int>& a) { return {a.begin(), a.end()}; }

void write_config(GgufWriter& w, const ModelConfig& c) {
    w.set_string("mclip.arch", c.name);
    w.set_u32("mclip.embed_dim", static_cast<uint32_t>(c.embed_dim));
    w.set_string("mclip.image.kind", to_string(c.image.kind));
    if (c.image.kind == ImageEncoderKind::mci) {
        const MciConfig& m = c.image.mci;
        w.set_i32_array("mclip.image.depths", as_i32(m.depths));
        w.set_i32_array("mclip.image.widths", as_i32(m.widths));
        w.set_u32("mclip.image.mlp_ratio", static_cast<uint32_t>(m.mlp_ratio));
        w.set_u32("mclip.image.head_dim", static_cast<uint32_t>(m.head_dim));
        w.set_u32("mclip.image.mixer_kernel", static_cast<uint32_t>(m.mixer_kernel));
        w.set_u32("mclip.image.ffn_kernel", static_cast<uint32_t>(m.ffn_kernel));
        w.set_u32("mclip.image.downsample_kernel", static_cast<uint32_t>(m.downsample_kernel));
        w.set_u32("mclip.image.cpe_kernel", static_cast<uint32_t>(m.cpe_kernel));
        w.set("mclip.image.downsample_se",
              GgufValue{GgufType::array, GgufType::boolean, nlohmann::json(std::vector<bool>(m.downsample_se.begin(), m.downsample_se.end()))});
        w.set_u32("mclip.image.se_divisor", static_cast<uint32_t>(m.se_divisor));
        w.set_u32("mclip.image.conv_exp_se_divisor", static_cast<uint32_t>(m.conv_exp_se_divisor));
        w.set_bool("mclip.image.head_bias", m.head_bias);
        w.set_u32("mclip.image.attention_stages", static_cast<uint32_t>(m.attention_stages));
        w.set_string("mclip.image.attention_norm", to_string(m.attention_norm));
        w.set_f32("mclip.image.norm_eps", m.norm_eps);
    } else {
        const VitConfig& v = c.image.vit;
        w.set_u32("mclip.image.width", static_cast<uint32_t>(v.width));
        w.set_u32("mclip.image.layers", static_cast<uint32_t>(v.layers));
        w.set_u32("mclip.image.heads", static_cast<uint32_t>(v.heads));
        w.set_u32("mclip.image.ffn", static_cast<uint32_t>(v.ffn));
        w.set_u32("mclip.image.stem_width", static_cast<uint32_t>(v.stem_width));
        w.set_u32("mclip.image.patch", static_cast<uint32_t>(v.patch));
        w.set_string("mclip.image.stem", to_string(v.stem));
        w.set_u32("mclip.image.stem_padding", static_cast<uint32_t>(v.stem_padding));
        w.set_bool("mclip.image.class_position", v.class_position);
        w.set_bool("mclip.image.pre_norm", v.pre_norm);
        w.set_string("mclip.image.activation", to_string(v.activation));
        w.set_f32("mclip.image.norm_eps", v.norm_eps);
        w.set_bool("mclip.image.head_bias", v.head_bias);
    }
    w.set_string("mclip.text.kind", to_string(c.text.kind));
    w.set_u32("mclip.text.layers", static_cast<uint32_t>(c.text.layers));
    w.set_u32("mclip.text.width", static_cast<uint32_t>(c.text.width));
    w.set_u32("mclip.text.heads", static_cast<uint32_t>(c.text.heads));
    w.set_u32("mclip.text.ffn", static_cast<uint32_t>(c.text.ffn));
    w.set_u32("mclip.text.context_length", static_cast<uint32_t>(c.text.context));
    w.set_u32("mclip.text.vocab_size", static_cast<uint32_t>(c.text.vocab));
    w.set_bool("mclip.text.causal", c.text.causal);
    w.set_string("mclip.text.activation", to_string(c.text.activation));
    w.set_u32("mclip.text.mixer_kernel", static_cast<uint32_t>(c.text.mixer_kernel));
    const PreprocessParams& p = c.preprocess;
    w.set_u32("mclip.preprocess.size", static_cast<uint32_t>(p.size));
    w.set_u32("mclip.preprocess.resize_size", static_cast<uint32_t>(p.resize_size == 0 ? p.size : p.resize_size));
    w.set_string("mclip.preprocess.resize_mode", to_string(p.resize_mode));
    w.set_string("mclip.preprocess.interpolation", to_string(p.interpolation));
    w.set_string("mclip.preprocess.crop", kCenterCrop);
    w.set_f32_array("mclip.preprocess.mean", {p.mean.begin(), p.mean.end()});
    w.set_f32_array("mclip.preprocess.std", {p.std.begin(), p.std.end()});
}

// Reads a model file's configuration keys. Format 1 files lack most of them: their writer took
// every value from the config table entry of their mclip.arch, so that entry (`defaults`)
// supplies what they lack; format 2 files must have every key. Values are range-checked so a
// damaged file is refused here rather than allocating absurd buffers later.
class ConfigReader {
public:
    ConfigReader(const GgufFile& file, const ModelConfig* defaults) : file_(file), defaults_(defaults) {}

    int integer(const std::string& key, int fallback, int low, int high) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_number_integer()) wrong_type(key, "an integer");
        const int64_t value = v->get<int64_t>();
        if (value < low || value > high) {
            fail(key + " is " + std::to_string(value) + ", outside [" + std::to_string(low) + ", " + std::to_string(high) + "]");
        }
        return static_cast<int>(value);
    }
    int dimension(const std::string& key, int fallback) const { return integer(key, fallback, 1, 1 << 20); }

    bool boolean(const std::string& key, bool fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_boolean()) wrong_type(key, "a boolean");
        return v->get<bool>();
    }

    std::string string(const std::string& key, const std::string& fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_string()) wrong_type(key, "a string");
        return v->get<std::string>();
    }

    template <typename T, size_t N>
    std::array<T, N> array(const std::string& key, const std::array<T, N>& fallback) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_array() || v->size() != N) wrong_type(key, "an array of " + std::to_string(N));
        std::array<T, N> out{};
        for (size_t i = 0; i < N; ++i) {
            const nlohmann::json& e = (*v)[i];
            const bool ok = std::is_same_v<T, bool> ? e.is_boolean() : std::is_integral_v<T> ? e.is_number_integer() : e.is_number();
            if (!ok) wrong_type(key, "an array of " + std::to_string(N) + (std::is_same_v<T, bool> ? " booleans" : " numbers"));
            out[i] = e.get<T>();
        }
        return out;
    }

    // A list of min_size to max_size integers or booleans.
    template <typename T>
    std::vector<T> list(const std::string& key, const std::vector<T>& fallback, size_t min_size, size_t max_size) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        const std::string what = std::is_same_v<T, bool> ? " booleans" : " integers";
        const std::string expected = "an array of " + std::to_string(min_size) + " to " + std::to_string(max_size) + what;
        if (!v->is_array() || v->size() < min_size || v->size() > max_size) wrong_type(key, expected);
        std::vector<T> out;
        for (const nlohmann::json& e : *v) {
            if (std::is_same_v<T, bool> ? !e.is_boolean() : !e.is_number_integer()) wrong_type(key, expected);
            if constexpr (!std::is_same_v<T, bool>) {
                const int64_t value = e.get<int64_t>();
                if (value < 1 || value > (1 << 16)) fail(key + " holds " + std::to_string(value) + ", outside [1, 65536]");
            }
            out.push_back(e.get<T>());
        }
        return out;
    }

    double real(const std::string& key, double fallback, double low, double high) const {
        const nlohmann::json* v = find(key);
        if (!v) return fallback;
        if (!v->is_number()) wrong_type(key, "a number");
        const double value = v->get<double>();
        if (!(value >= low && value <= high)) fail(key + " is " + std::to_string(value) + ", outside [" + std::to_string(low) + ", " + std::to_string(high) + "]");
        return value;
    }

    // Keys added within format 2 (for the CLIP-family architectures): files written before them
    // lack them and mean the value MobileCLIP has, `fallback`.
    bool present(const std::string& key) const { return file_.metadata().count(key) != 0; }

    [[noreturn]] void fail(const std::string& what) const { throw Error(ErrorCode::invalid_input, file_.path() + ": " + what); }

private:
    // The value, or null when the key is absent and a format 1 default applies.
    const nlohmann::json* find(const std::string& key) const {
        const auto it = file_.metadata().find(key);
        if (it != file_.metadata().end()) return &it->second.value;
        if (!defaults_) fail("missing metadata key '" + key + "'");
        return nullptr;
    }
    [[noreturn]] void wrong_type(const std::string& key, const std::string& expected) const {
        fail(key + " is not " + expected);
    }

    const GgufFile& file_;
    const ModelConfig* defaults_;
};

ModelConfig read_config(const GgufFile& file, const ModelConfig* defaults) {
    const ModelConfig fallback = defaults ? *defaults : ModelConfig{};
    const ConfigReader r(file, defaults);
    ModelConfig c;
    c.name = r.string("mclip.arch", fallback.name);
    c.display_name = r.string("general.name", fallback.display_name);
    c.embed_dim = r.dimension("mclip.embed_dim", fallback.embed_dim);

    const std::string image_kind = r.string("mclip.image.kind", to_string(fallback.image.kind));
    if (image_kind == "mci") {
        c.image.kind = ImageEncoderKind::mci;
        const MciConfig& d = fallback.image.mci;
        MciConfig& m = c.image.mci;
        m.depths = r.list("mclip.image.depths", d.depths, 2, kMaxMciStages);
        if (m.depths.size() < 2) r.fail("mclip.image.depths is missing");
        m.widths = r.list("mclip.image.widths", d.widths, m.depths.size(), m.depths.size());
        for (size_t s = 0; s < m.depths.size(); ++s) {
            if (m.depths[s] > 1024) r.fail("mclip.image.depths holds an implausible stage of " + std::to_string(m.depths[s]) + " blocks");
        }
        m.mlp_ratio = r.dimension("mclip.image.mlp_ratio", d.mlp_ratio);
        m.head_dim = r.dimension("mclip.image.head_dim", d.head_dim);
        m.mixer_kernel = r.integer("mclip.image.mixer_kernel", d.mixer_kernel, 1, 63);
        m.ffn_kernel = r.integer("mclip.image.ffn_kernel", d.ffn_kernel, 1, 63);
        m.downsample_kernel = r.integer("mclip.image.downsample_kernel", d.downsample_kernel, 3, 63);
        m.cpe_kernel = r.integer("mclip.image.cpe_kernel", d.cpe_kernel, 1, 63);
        m.downsample_se = r.list("mclip.image.downsample_se", d.downsample_se, m.depths.size() - 1, m.depths.size() - 1);
        m.se_divisor = r.dimension("mclip.image.se_divisor", d.se_divisor);
        m.conv_exp_se_divisor = r.dimension("mclip.image.conv_exp_se_divisor", d.conv_exp_se_divisor);
        if (m.widths.size() != m.depths.size() || m.downsample_se.size() + 1 != m.depths.size()) {
            r.fail("mclip.image.depths, widths and downsample_se do not describe the same stages");
        }
        m.head_bias = r.present("mclip.image.head_bias") ? r.boolean("mclip.image.head_bias", false) : d.head_bias;
        m.attention_stages = r.present("mclip.image.attention_stages")
                                 ? r.integer("mclip.image.attention_stages", 1, 1, static_cast<int>(m.depths.size()))
                                 : d.attention_stages;
        try {
            m.attention_norm = r.present("mclip.image.attention_norm") ? mci_attention_norm_from_name(r.string("mclip.image.attention_norm", ""))
                                                                       : d.attention_norm;
        } catch (const Error& e) {
            r.fail(e.what());
        }
        m.norm_eps = r.present("mclip.image.norm_eps") ? static_cast<float>(r.real("mclip.image.norm_eps", 0, 1e-12, 1e-1)) : d.norm_eps;
        for (int s = 0; s < m.stages(); ++s) {
            if (m.attention_stage(s) && m.widths[s] % m.head_dim != 0) {
                r.fail("mclip.image.head_dim " + std::to_string(m.head_dim) + " does not divide the width " + std::to_string(m.widths[s]));
            }
        }
    } else if (image_kind == "vit") {
        c.image.kind = ImageEncoderKind::vit;
        const VitConfig& d = fallback.image.vit;
        VitConfig& v = c.image.vit;
        v.width = r.dimension("mclip.image.width", d.width);
        v.layers = r.integer("mclip.image.layers", d.layers, 1, 1024);
        v.heads = r.dimension("mclip.image.heads", d.heads);
        v.ffn = r.dimension("mclip.image.ffn", d.ffn);
        v.stem_width = r.dimension("mclip.image.stem_width", d.stem_width);
        try {
            v.stem = r.present("mclip.image.stem") ? vit_stem_from_name(r.string("mclip.image.stem", "")) : d.stem;
            v.activation = r.present("mclip.image.activation") ? mlp_activation_from_name(r.string("mclip.image.activation", "")) : d.activation;
        } catch (const Error& e) {
            r.fail(e.what());
        }
        // The conv3 stem (4·2·2) fixes the patch at 16.
        v.patch = v.stem == VitStem::conv3 ? r.integer("mclip.image.patch", d.patch, 16, 16) : r.integer("mclip.image.patch", d.patch, 1, 1024);
        v.stem_padding = r.present("mclip.image.stem_padding") ? r.integer("mclip.image.stem_padding", 0, 0, 3) : d.stem_padding;
        v.class_position = r.present("mclip.image.class_position") ? r.boolean("mclip.image.class_position", false) : d.class_position;
        v.pre_norm = r.present("mclip.image.pre_norm") ? r.boolean("mclip.image.pre_norm", false) : d.pre_norm;
        v.norm_eps = r.present("mclip.image.norm_eps") ? static_cast<float>(r.real("mclip.image.norm_eps", 0, 1e-12, 1e-1)) : d.norm_eps;
        v.head_bias = r.present("mclip.image.head_bias") ? r.boolean("mclip.image.head_bias", false) : d.head_bias;
        if (v.width % v.heads != 0) r.fail("mclip.image.heads " + std::to_string(v.heads) + " does not divide the width " + std::to_string(v.width));
    } else {
        r.fail("unknown image encoder kind '" + image_kind + "' (mclip knows mci and vit)");
    }

    const std::string text_kind = r.string("mclip.text.kind", to_string(fallback.text.kind));
    if (text_kind != "base" && text_kind != "mct") r.fail("unknown text encoder kind '" + text_kind + "' (mclip knows base and mct)");
    const TextEncoderConfig& dt = fallback.text;
    TextEncoderConfig& t = c.text;
    t.kind = text_kind == "mct" ? TextEncoderKind::mct : TextEncoderKind::base;
    t.layers = r.integer("mclip.text.layers", dt.layers, 1, 1024);
    t.width = r.dimension("mclip.text.width", dt.width);
    t.heads = r.dimension("mclip.text.heads", dt.heads);
    t.ffn = r.dimension("mclip.text.ffn", dt.ffn);
    t.context = r.integer("mclip.text.context_length", dt.context, 2, 4096);
    t.vocab = r.dimension("mclip.text.vocab_size", dt.vocab);
    t.causal = r.boolean("mclip.text.causal", dt.causal);
    try {
        t.activation = r.present("mclip.text.activation") ? mlp_activation_from_name(r.string("mclip.text.activation", "")) : dt.activation;
    } catch (const Error& e) {
        r.fail(e.what());
    }
    t.mixer_kernel = r.integer("mclip.text.mixer_kernel", dt.mixer_kernel, 1, 63);
    if (t.width % t.heads != 0) r.fail("mclip.text.heads " + std::to_string(t.heads) + " does not divide the width " + std::to_string(t.width));

    const PreprocessParams& dp = fallback.preprocess;
    PreprocessParams& p = c.preprocess;
    p.size = r.integer("mclip.preprocess.size", dp.size, 1, 8192);
    // Format 1 files wrote the image input size twice; they must agree.
    if (file.has("mclip.image.input_size") && file.get_int("mclip.image.input_size") != p.size) {
        r.fail("mclip.image.input_size (" + std::to_string(file.get_int("mclip.image.input_size")) +
               ") differs from mclip.preprocess.size (" + std::to_string(p.size) + ")");
    }
    if (c.image.kind == ImageEncoderKind::vit && p.size % c.image.vit.patch != 0) {
        r.fail("mclip.preprocess.size " + std::to_string(p.size) + " is not a multiple of the ViT patch " + std::to_string(c.image.vit.patch));
    }
    p.resize_size = r.integer("mclip.preprocess.resize_size", dp.resize_size == 0 ? p.size : dp.resize_size, p.size, 8192);
    try {
        p.resize_mode = resize_mode_from_name(r.string("mclip.preprocess.resize_mode", to_string(dp.resize_mode)));
        // Format 1 named the interpolation "resize".
        const std::string v1_interpolation = defaults ? r.string("mclip.preprocess.resize", to_string(dp.interpolation)) : "";
        p.interpolation = interpolation_from_name(r.string("mclip.preprocess.interpolation", v1_interpolation));
    } catch (const Error& e) {
        r.fail(e.what());
    }
    const std::string crop = r.string("mclip.preprocess.crop", kCenterCrop);
    if (crop != kCenterCrop) {
        throw Error(ErrorCode::unsupported, file.path() + ": unsupported crop '" + crop + "' (mclip knows '" + kCenterCrop + "')");
    }
    p.mean = r.array("mclip.preprocess.mean", dp.mean);
    p.std = r.array("mclip.preprocess.std", dp.std);
    for (float s : p.std) {
        if (!(std::isfinite(s) && s != 0.0f)) r.fail("mclip.preprocess.std holds " + std::to_string(s) + "; every std must be finite and non-zero");
    }
    for (float m : p.mean) {
        if (!std::isfinite(m)) r.fail("mclip.preprocess.mean holds a value that is not finite");
    }
    return c;
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

bool has_tokenizer(const GgufFile& file) {
    if (!file.has("tokenizer.ggml.merges")) return false;
    const std::string model = file.get_string_or("tokenizer.ggml.model", kTokenizerModel);
    if (model != kTokenizerModel) {
        throw Error(ErrorCode::unsupported, file.path() + ": tokenizer '" + model + "' is not CLIP's BPE");
    }
    return true;
}

std::optional<Tokenizer> load_tokenizer(const GgufFile& file) {
    if (!has_tokenizer(file)) return std::nullopt;
    return Tokenizer::from_merges(file.get_string_array("tokenizer.ggml.merges"));
}

ModelConfig model_file_config(const GgufFile& file) {
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
    if (version < 1) throw Error(ErrorCode::invalid_input, file.path() + ": mclip.format_version " + std::to_string(version) + " is invalid");
    if (version == 1) return read_config(file, &model_config(file.get_string("mclip.arch")));
    return read_config(file, nullptr);
}

}  // namespace mclip
