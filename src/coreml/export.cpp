#include "coreml/export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "coreml/coreml_spec.pb.h"
#include "coreml/milblob.h"

namespace mclip::coreml {

namespace fs = std::filesystem;

namespace {

void set_tensor_type(spec::ValueType* type, spec::DataType dtype, const Shape& shape) {
    auto* tensor = type->mutable_tensortype();
    tensor->set_datatype(dtype);
    tensor->set_rank(static_cast<int64_t>(shape.size()));
    for (int64_t d : shape) tensor->add_dimensions()->mutable_constant()->set_size(static_cast<uint64_t>(d));
}

spec::Value string_value(const std::string& text) {
    spec::Value value;
    set_tensor_type(value.mutable_type(), spec::STRING, {});
    value.mutable_immediatevalue()->mutable_tensor()->mutable_strings()->add_values(text);
    return value;
}

std::vector<uint8_t> to_bytes(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    return {p, p + size};
}

// MIL names are identifiers: mclip's dotted tensor names become underscores.
std::string identifier(const std::string& text) {
    std::string out = text;
    for (char& ch : out) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    return out;
}

// Builds main's block op by op. Variables are named v<N>; consts c<N>_<what>.
class MilBuilder {
public:
    MilBuilder(spec::Block* block, spec::DataType compute, const ExportOptions& options)
        : block_(block), compute_(compute), options_(options) {}

    BlobWriter& blobs() { return blobs_; }
    spec::DataType compute() const { return compute_; }

    struct Var {
        std::string name;
        spec::DataType dtype;
        Shape shape;
    };

    spec::Operation* add_op(const std::string& type, const std::string& name) {
        spec::Operation* op = block_->add_operations();
        op->set_type(type);
        (*op->mutable_attributes())["name"] = string_value(name);
        return op;
    }

    static void bind(spec::Operation* op, const std::string& param, const Var& var) {
        (*op->mutable_inputs())[param].add_arguments()->set_name(var.name);
    }

    Var output(spec::Operation* op, const std::string& name, spec::DataType dtype, const Shape& shape) {
        auto* out = op->add_outputs();
        out->set_name(name);
        set_tensor_type(out->mutable_type(), dtype, shape);
        return {name, dtype, shape};
    }

    // A const holding raw little-endian elements: in the blob file from 10 elements on (as
    // coremltools does for float and 8-bit types), inline bytes otherwise.
    spec::Value raw_value(spec::DataType dtype, const Shape& shape, const std::vector<uint8_t>& bytes, bool blob_ok) {
        spec::Value value;
        set_tensor_type(value.mutable_type(), dtype, shape);
        int64_t count = 1;
        for (int64_t d : shape) count *= d;
        std::optional<BlobType> blob_type;
        if (dtype == spec::FLOAT16) blob_type = BlobType::f16;
        if (dtype == spec::FLOAT32) blob_type = BlobType::f32;
        if (dtype == spec::UINT8) blob_type = BlobType::u8;
        if (dtype == spec::INT8) blob_type = BlobType::i8;
        if (blob_ok && blob_type && count >= 10) {
            auto* blob = value.mutable_blobfilevalue();
            blob->set_filename("@model_path/weights/weight.bin");
            blob->set_offset(blobs_.add(*blob_type, bytes));
        } else if (dtype == spec::FLOAT32) {
            auto* floats = value.mutable_immediatevalue()->mutable_tensor()->mutable_floats();
            for (size_t i = 0; i < bytes.size(); i += 4) {
                float f;
                std::memcpy(&f, bytes.data() + i, 4);
                floats->add_values(f);
            }
        } else if (dtype == spec::INT32) {
            auto* ints = value.mutable_immediatevalue()->mutable_tensor()->mutable_ints();
            for (size_t i = 0; i < bytes.size(); i += 4) {
                int32_t v;
                std::memcpy(&v, bytes.data() + i, 4);
                ints->add_values(v);
            }
        } else if (dtype == spec::BOOL) {
            auto* bools = value.mutable_immediatevalue()->mutable_tensor()->mutable_bools();
            for (uint8_t b : bytes) bools->add_values(b != 0);
        } else {
            value.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(std::string(bytes.begin(), bytes.end()));
        }
        return value;
    }

    Var constant(const std::string& what, spec::DataType dtype, const Shape& shape, const std::vector<uint8_t>& bytes) {
        const std::string name = "c" + std::to_string(++counter_) + "_" + identifier(what);
        spec::Operation* op = add_op("const", name);
        (*op->mutable_attributes())["val"] = raw_value(dtype, shape, bytes, true);
        return output(op, name, dtype, shape);
    }

    Var ints(const std::string& what, const std::vector<int32_t>& values, bool scalar = false) {
        return constant(what, spec::INT32, scalar ? Shape{} : Shape{static_cast<int64_t>(values.size())},
                        to_bytes(values.data(), values.size() * 4));
    }
    Var boolean(const std::string& what, bool value) {
        const uint8_t b = value ? 1 : 0;
        return constant(what, spec::BOOL, {}, {b});
    }
    Var text(const std::string& what, const std::string& value) {
        const std::string name = "c" + std::to_string(++counter_) + "_" + identifier(what);
        spec::Operation* op = add_op("const", name);
        (*op->mutable_attributes())["val"] = string_value(value);
        return output(op, name, spec::STRING, {});
    }
    // A float scalar or tensor in the compute dtype (or fp32 when `fp32`).
    Var floats(const std::string& what, const Shape& shape, const std::vector<float>& values, bool fp32 = false) {
        const spec::DataType dtype = fp32 ? spec::FLOAT32 : compute_;
        if (dtype == spec::FLOAT32) return constant(what, dtype, shape, to_bytes(values.data(), values.size() * 4));
        std::vector<uint16_t> half(values.size());
        for (size_t i = 0; i < values.size(); ++i) half[i] = f32_to_f16(values[i]);
        return constant(what, dtype, shape, to_bytes(half.data(), half.size() * 2));
    }

    // A weight tensor, compressed as the options say when it is large enough.
    Var weight(const std::string& what, const Tensor& tensor) {
        const std::vector<float> values(tensor.f32(), tensor.f32() + tensor.elements());
        const Shape& shape = tensor.shape();
        const std::string& mode = options_.weights;
        if (tensor.elements() <= options_.compression_threshold || mode == "f32" || mode == "f16") {
            if (mode == "f32" && compute_ == spec::FLOAT16) {
                throw Error(ErrorCode::invalid_argument, "--weights f32 needs --compute f32 (an fp16 program takes fp16 weights)");
            }
            return floats(what, shape, values);
        }
        const std::string name = "c" + std::to_string(++counter_) + "_" + identifier(what);
        if (mode == "lut8" || mode == "lut4") {
            // Uniform palettization: one LUT per tensor spanning [min, max].
            const int nbits = mode == "lut8" ? 8 : 4;
            const int entries = 1 << nbits;
            const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
            const float min = *lo, range = *hi - *lo;
            std::vector<float> lut(entries);
            for (int k = 0; k < entries; ++k) lut[k] = min + static_cast<float>(k) * range / static_cast<float>(entries - 1);
            std::vector<uint8_t> packed((values.size() * nbits + 7) / 8, 0);
            for (size_t i = 0; i < values.size(); ++i) {
                const unsigned index = range > 0 ? static_cast<unsigned>(std::lround((values[i] - min) / range * (entries - 1))) : 0u;
                for (int b = 0; b < nbits; ++b) {
                    const size_t bit = i * nbits + b;
                    packed[bit / 8] |= static_cast<uint8_t>(((index >> b) & 1u) << (bit % 8));
                }
            }
            spec::Operation* op = add_op("constexpr_lut_to_dense", name);
            auto& attrs = *op->mutable_attributes();
            attrs["indices"] = raw_value(spec::UINT8, {static_cast<int64_t>(packed.size())}, packed, true);
            if (compute_ == spec::FLOAT32) {
                attrs["lut"] = raw_value(spec::FLOAT32, {entries}, to_bytes(lut.data(), lut.size() * 4), true);
            } else {
                std::vector<uint16_t> half(entries);
                for (int k = 0; k < entries; ++k) half[k] = f32_to_f16(lut[k]);
                attrs["lut"] = raw_value(spec::FLOAT16, {entries}, to_bytes(half.data(), half.size() * 2), true);
            }
            std::vector<uint32_t> dims(shape.begin(), shape.end());
            attrs["shape"] = raw_value(spec::UINT32, {static_cast<int64_t>(dims.size())}, to_bytes(dims.data(), dims.size() * 4), false);
            return output(op, name, compute_, shape);
        }
        if (mode == "int8") {
            // Symmetric linear quantization, one scale per output channel (axis 0).
            const int64_t channels = shape.at(0);
            const int64_t inner = tensor.elements() / channels;
            std::vector<int8_t> q(values.size());
            std::vector<float> scale(channels);
            for (int64_t c = 0; c < channels; ++c) {
                float max = 0;
                for (int64_t i = 0; i < inner; ++i) max = std::max(max, std::fabs(values[c * inner + i]));
                scale[c] = max > 0 ? max / 127.0f : 1.0f;
                if (compute_ == spec::FLOAT16) scale[c] = f16_to_f32(f32_to_f16(scale[c]));
                for (int64_t i = 0; i < inner; ++i) {
                    q[c * inner + i] = static_cast<int8_t>(std::clamp(std::lround(values[c * inner + i] / scale[c]), -127L, 127L));
                }
            }
            spec::Operation* op = add_op("constexpr_affine_dequantize", name);
            auto& attrs = *op->mutable_attributes();
            attrs["quantized_data"] = raw_value(spec::INT8, shape, to_bytes(q.data(), q.size()), true);
            const std::vector<int8_t> zero(channels, 0);
            attrs["zero_point"] = raw_value(spec::INT8, {channels}, to_bytes(zero.data(), zero.size()), true);
            if (compute_ == spec::FLOAT32) {
                attrs["scale"] = raw_value(spec::FLOAT32, {channels}, to_bytes(scale.data(), scale.size() * 4), true);
            } else {
                std::vector<uint16_t> half(channels);
                for (int64_t c = 0; c < channels; ++c) half[c] = f32_to_f16(scale[c]);
                attrs["scale"] = raw_value(spec::FLOAT16, {channels}, to_bytes(half.data(), half.size() * 2), true);
            }
            const int32_t axis = 0;
            attrs["axis"] = raw_value(spec::INT32, {}, to_bytes(&axis, 4), false);
            return output(op, name, compute_, shape);
        }
        throw Error(ErrorCode::invalid_argument, "unknown weight format '" + mode + "' (f32, f16, int8, lut8, lut4)");
    }

    Var op(const std::string& type, const std::vector<std::pair<std::string, Var>>& inputs, spec::DataType dtype, const Shape& shape) {
        const std::string name = "v" + std::to_string(++counter_) + "_" + type;
        spec::Operation* o = add_op(type, name);
        for (const auto& [param, var] : inputs) bind(o, param, var);
        return output(o, name, dtype, shape);
    }
    Var op(const std::string& type, const std::vector<std::pair<std::string, Var>>& inputs, const Shape& shape) {
        return op(type, inputs, compute_, shape);
    }

private:
    spec::Block* block_;
    spec::DataType compute_;
    const ExportOptions& options_;
    BlobWriter blobs_;
    int counter_ = 0;
};

using Var = MilBuilder::Var;

struct Graph {
    MilBuilder& b;
    const TensorMap& t;

    const Tensor& get(const std::string& name) const {
        const auto found = t.find(name);
        if (found == t.end()) throw Error(ErrorCode::invalid_input, "the model has no tensor '" + name + "'");
        return found->second;
    }

    Var conv(const Var& x, const std::string& name, int stride, int groups) {
        const Tensor& w = get(name + ".weight");
        const int64_t kh = w.dim(2), kw = w.dim(3);
        const Var weight = b.weight(name + "_weight", w);
        const Var bias = b.floats(name + "_bias", {w.dim(0)}, std::vector<float>(get(name + ".bias").f32(), get(name + ".bias").f32() + w.dim(0)));
        const int32_t ph = static_cast<int32_t>(kh / 2), pw = static_cast<int32_t>(kw / 2);
        const int64_t h = (x.shape[2] + 2 * ph - kh) / stride + 1, wd = (x.shape[3] + 2 * pw - kw) / stride + 1;
        return b.op("conv",
                    {{"x", x},
                     {"weight", weight},
                     {"bias", bias},
                     {"strides", b.ints("strides", {stride, stride})},
                     {"pad_type", b.text("pad_type", "custom")},
                     {"pad", b.ints("pad", {ph, ph, pw, pw})},
                     {"dilations", b.ints("dilations", {1, 1})},
                     {"groups", b.ints("groups", {groups}, true)}},
                    {x.shape[0], w.dim(0), h, wd});
    }
    Var gelu(const Var& x) { return b.op("gelu", {{"x", x}, {"mode", b.text("mode", "EXACT")}}, x.shape); }
    Var add(const Var& x, const Var& y) { return b.op("add", {{"x", x}, {"y", y}}, x.shape); }

    Var squeeze_excite(const Var& x, const std::string& name) {
        Shape pooled{x.shape[0], x.shape[1], 1, 1};
        Var s = b.op("reduce_mean", {{"x", x}, {"axes", b.ints("axes", {2, 3})}, {"keep_dims", b.boolean("keep_dims", true)}}, pooled);
        s = conv(s, name + ".fc1", 1, 1);
        s = b.op("relu", {{"x", s}}, s.shape);
        s = conv(s, name + ".fc2", 1, 1);
        s = b.op("sigmoid", {{"x", s}}, s.shape);
        return b.op("mul", {{"x", x}, {"y", s}}, x.shape);
    }

    Var conv_ffn(const Var& x, const std::string& name, int channels) {
        Var y = conv(x, name + ".dw", 1, channels);
        y = gelu(conv(y, name + ".fc1", 1, 1));
        y = conv(y, name + ".fc2", 1, 1);
        return add(x, y);
    }

    Var vector(const std::string& what, const std::string& name, int64_t n) {
        const Tensor& t = get(name);
        return b.floats(what, {n}, std::vector<float>(t.f32(), t.f32() + n));
    }

    Var linear(const Var& x, const std::string& name, const std::string& what) {
        const Tensor& w = get(name + ".weight");
        Shape shape = x.shape;
        shape.back() = w.dim(0);
        return b.op("linear", {{"x", x}, {"weight", b.weight(what + "_weight", w)}, {"bias", vector(what + "_bias", name + ".bias", w.dim(0))}}, shape);
    }

    // Multi-head self-attention over a token sequence [n, T, C]: qkv, heads of head_dim,
    // softmax(q·kᵀ/√d + mask)·v, output projection. `mask` ([1, 1, T, T], added to the scores)
    // may be null.
    Var mhsa(const Var& seq, const std::string& qkv_name, const std::string& proj_name, int64_t head_dim, const Var* mask = nullptr) {
        const int64_t n = seq.shape[0], tokens = seq.shape[1], c = seq.shape[2], heads = c / head_dim;
        Var qkv = linear(seq, qkv_name, qkv_name);
        qkv = b.op("reshape",
                   {{"x", qkv},
                    {"shape", b.ints("shape", {static_cast<int32_t>(n), static_cast<int32_t>(tokens), 3, static_cast<int32_t>(heads),
                                               static_cast<int32_t>(head_dim)})}},
                   {n, tokens, 3, heads, head_dim});
        qkv = b.op("transpose", {{"x", qkv}, {"perm", b.ints("perm", {2, 0, 3, 1, 4})}}, {3, n, heads, tokens, head_dim});
        Var parts[3];
        for (int i = 0; i < 3; ++i) {
            parts[i] = b.op("slice_by_index",
                            {{"x", qkv},
                             {"begin", b.ints("begin", {i, 0, 0, 0, 0})},
                             {"end", b.ints("end", {i + 1, 0, 0, 0, 0})},
                             {"end_mask", b.constant("end_mask", spec::BOOL, {5}, {0, 1, 1, 1, 1})},
                             {"squeeze_mask", b.constant("squeeze_mask", spec::BOOL, {5}, {1, 0, 0, 0, 0})}},
                            {n, heads, tokens, head_dim});
        }
        const Var q = b.op("mul", {{"x", parts[0]}, {"y", b.floats("scale", {}, {1.0f / std::sqrt(static_cast<float>(head_dim))})}}, parts[0].shape);
        Var scores = b.op("matmul", {{"x", q}, {"y", parts[1]}, {"transpose_x", b.boolean("transpose_x", false)}, {"transpose_y", b.boolean("transpose_y", true)}},
                          {n, heads, tokens, tokens});
        if (mask) scores = b.op("add", {{"x", scores}, {"y", *mask}}, scores.shape);
        scores = b.op("softmax", {{"x", scores}, {"axis", b.ints("axis", {-1}, true)}}, scores.shape);
        Var out = b.op("matmul", {{"x", scores}, {"y", parts[2]}, {"transpose_x", b.boolean("transpose_x", false)}, {"transpose_y", b.boolean("transpose_y", false)}},
                       {n, heads, tokens, head_dim});
        out = b.op("transpose", {{"x", out}, {"perm", b.ints("perm", {0, 2, 1, 3})}}, {n, tokens, heads, head_dim});
        out = b.op("reshape", {{"x", out}, {"shape", b.ints("shape", {static_cast<int32_t>(n), static_cast<int32_t>(tokens), static_cast<int32_t>(c)})}},
                   {n, tokens, c});
        return linear(out, proj_name, proj_name);
    }

    // The MCi attention block on a feature map [n, C, H, W]: x + proj(MHSA(tokens)).
    Var attention(const Var& x, const std::string& name, int head_dim) {
        const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], tokens = h * w;
        Var seq = b.op("reshape", {{"x", x}, {"shape", b.ints("shape", {static_cast<int32_t>(n), static_cast<int32_t>(c), static_cast<int32_t>(tokens)})}},
                       {n, c, tokens});
        seq = b.op("transpose", {{"x", seq}, {"perm", b.ints("perm", {0, 2, 1})}}, {n, tokens, c});
        Var out = mhsa(seq, name + ".qkv", name + ".proj", head_dim);
        out = b.op("transpose", {{"x", out}, {"perm", b.ints("perm", {0, 2, 1})}}, {n, c, tokens});
        out = b.op("reshape",
                   {{"x", out}, {"shape", b.ints("shape", {static_cast<int32_t>(n), static_cast<int32_t>(c), static_cast<int32_t>(h), static_cast<int32_t>(w)})}},
                   x.shape);
        return add(x, out);
    }

    Var layer_norm(const Var& x, const std::string& name) {
        const int64_t c = x.shape.back();
        return b.op("layer_norm",
                    {{"x", x}, {"axes", b.ints("axes", {-1})}, {"gamma", vector(name + "_gamma", name + ".weight", c)},
                     {"beta", vector(name + "_beta", name + ".bias", c)}, {"epsilon", b.floats("epsilon", {}, {1e-5f})}},
                    x.shape);
    }
};

std::string uuid() {
    std::random_device device;
    std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device());
    const char* hex = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 32; ++i) {
        if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
        int v = static_cast<int>(rng() & 15);
        if (i == 12) v = 4;                  // version 4
        if (i == 16) v = 8 | (v & 3);        // variant 10xx
        out += hex[v];
    }
    return out;
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw_system_error(path.string(), "cannot write");
}


void write_image_graph(MilBuilder& b, const ModelConfig& config, const TensorMap& tensors) {
    const int size = config.image_size();
    // ImageType preprocessing: pixel (0..255) × scale + bias[c] = (pixel/255 − mean[c]) / std[c].
    // Core ML has one scale for all channels.
    const auto& pre = config.preprocess;
    if (pre.std[0] != pre.std[1] || pre.std[1] != pre.std[2]) {
        throw Error(ErrorCode::unsupported, "the model normalizes channels with different std; a Core ML image input has one scale");
    }
    const float scale = 1.0f / (255.0f * pre.std[0]);
    Var x{"image", spec::FLOAT32, {1, 3, size, size}};
    {
        spec::Operation* op = b.add_op("mul", "image__scaled__");
        MilBuilder::bind(op, "x", x);
        const Var y = b.floats("image__scaled___y", {}, {scale}, true);
        MilBuilder::bind(op, "y", y);
        x = b.output(op, "image__scaled__", spec::FLOAT32, x.shape);
    }
    std::vector<float> bias(3);
    for (int c = 0; c < 3; ++c) bias[c] = -pre.mean[c] / pre.std[c];
    if (bias[0] != 0 || bias[1] != 0 || bias[2] != 0) {
        spec::Operation* op = b.add_op("add", "image__biased__");
        MilBuilder::bind(op, "x", x);
        const Var y = b.floats("image__biased___y", {1, 3, 1, 1}, bias, true);
        MilBuilder::bind(op, "y", y);
        x = b.output(op, "image__biased__", spec::FLOAT32, x.shape);
    }
    if (b.compute() == spec::FLOAT16) x = b.op("cast", {{"x", x}, {"dtype", b.text("dtype", "fp16")}}, spec::FLOAT16, x.shape);

    Graph g{b, tensors};
    const MciConfig& m = config.image.mci;
    const std::string p = "img.";
    const int c0 = m.widths[0];
    x = g.gelu(g.conv(x, p + "patch_embed.0", 2, 1));
    x = g.gelu(g.conv(x, p + "patch_embed.1", 2, c0));
    x = g.gelu(g.conv(x, p + "patch_embed.2", 1, 1));
    for (int s = 0; s < m.stages(); ++s) {
        const int c = m.widths[s];
        const bool attention = m.attention_stage(s);
        if (attention) x = g.conv(x, p + "network." + std::to_string(m.cpe_index(s)), 1, c);
        for (int i = 0; i < m.depths[s]; ++i) {
            const std::string block_name = p + "network." + std::to_string(m.stage_index(s)) + "." + std::to_string(i);
            x = attention ? g.attention(x, block_name, m.head_dim) : g.conv(x, block_name + ".token_mixer", 1, c);
            x = g.conv_ffn(x, block_name + ".ffn", c);
        }
        if (s + 1 < m.stages()) {
            const std::string proj = p + "network." + std::to_string(m.downsample_index(s)) + ".proj";
            x = g.conv(x, proj + ".0", 2, c);
            if (m.downsample_se[s]) x = g.squeeze_excite(x, proj + ".0.se");
            x = g.gelu(x);
            x = g.gelu(g.conv(x, proj + ".1", 1, 1));
        }
    }
    const int c3 = m.last_width();
    x = g.conv(x, p + "conv_exp", 1, c3);
    x = g.gelu(g.squeeze_excite(x, p + "conv_exp.se"));
    x = b.op("reduce_mean", {{"x", x}, {"axes", b.ints("axes", {2, 3})}, {"keep_dims", b.boolean("keep_dims", false)}}, {1, 2 * c3});
    // mclip stores the projection [in, out]; linear takes [out, in].
    const Tensor& head = g.get(p + "head.proj");
    Tensor head_t = Tensor::zeros_f32({config.embed_dim, 2 * c3});
    for (int64_t i = 0; i < 2 * c3; ++i) {
        for (int64_t o = 0; o < config.embed_dim; ++o) head_t.f32()[o * 2 * c3 + i] = head.f32()[i * config.embed_dim + o];
    }
    spec::Operation* last = b.add_op("linear", "embedding");
    MilBuilder::bind(last, "x", x);
    MilBuilder::bind(last, "weight", b.weight("head_weight", head_t));
    MilBuilder::bind(last, "bias", b.floats("head_bias", {config.embed_dim}, std::vector<float>(config.embed_dim, 0.0f)));
    b.output(last, "embedding", b.compute(), {1, config.embed_dim});
}

// The classifier head over the "embedding" output, laid out as coremltools lays out a
// classifier: probabilities in float32 into a `classify` op whose class names are a literal list
// bound to the op (not a const), with outputs "classLabel" (a string) and "classLabel_probs" (a
// dictionary of string to double).
void write_classifier(MilBuilder& b, const ModelConfig& config, const ExportOptions& options) {
    using Var = MilBuilder::Var;
    const int64_t classes = static_cast<int64_t>(options.class_labels.size());
    const Var embedding{"embedding", b.compute(), {1, config.embed_dim}};
    const Var norm = b.op("reduce_l2_norm", {{"x", embedding}, {"axes", b.ints("axes", {1})}, {"keep_dims", b.boolean("keep_dims", true)}}, {1, 1});
    const Var unit = b.op("real_div", {{"x", embedding}, {"y", norm}}, {1, config.embed_dim});
    const Tensor& w = options.class_weights;
    const Var logits = b.op("linear", {{"x", unit},
                                       {"weight", b.floats("class_weights", w.shape(), std::vector<float>(w.f32(), w.f32() + w.elements()))},
                                       {"bias", b.floats("class_bias", {classes}, std::vector<float>(classes, 0.0f))}},
                            {1, classes});
    Var probabilities = b.op("softmax", {{"x", logits}, {"axis", b.ints("axis", {-1}, true)}}, {1, classes});
    if (probabilities.dtype != spec::FLOAT32) {
        probabilities = b.op("cast", {{"x", probabilities}, {"dtype", b.text("dtype", "fp32")}}, spec::FLOAT32, {1, classes});
    }

    spec::Operation* op = b.add_op("classify", "classify");
    MilBuilder::bind(op, "probabilities", probabilities);
    spec::Value& names = *(*op->mutable_inputs())["classes"].add_arguments()->mutable_value();
    auto* list_type = names.mutable_type()->mutable_listtype();
    set_tensor_type(list_type->mutable_type(), spec::STRING, {});
    list_type->mutable_length()->mutable_constant()->set_size(static_cast<uint64_t>(classes));
    for (const std::string& label : options.class_labels) *names.mutable_immediatevalue()->mutable_list()->add_values() = string_value(label);
    b.output(op, "classLabel", spec::STRING, {});
    auto* probs = op->add_outputs();
    probs->set_name("classLabel_probs");
    auto* dictionary = probs->mutable_type()->mutable_dictionarytype();
    set_tensor_type(dictionary->mutable_keytype(), spec::STRING, {});
    set_tensor_type(dictionary->mutable_valuetype(), spec::FLOAT64, {});
}

void write_text_graph(MilBuilder& b, const ModelConfig& config, const TensorMap& tensors, bool ios17) {
    const TextEncoderConfig& t = config.text;
    Graph g{b, tensors};
    const std::string p = "txt.";
    const int64_t c = t.width, length = t.context;
    const Var ids{"text", spec::INT32, {1, length}};
    std::vector<std::pair<std::string, Var>> gather_inputs = {{"x", b.weight("token_embedding", g.get(p + "token_embedding"))},
                                                              {"indices", ids},
                                                              {"axis", b.ints("axis", {0}, true)},
                                                              {"batch_dims", b.ints("batch_dims", {0}, true)}};
    if (ios17) gather_inputs.emplace_back("validate_indices", b.boolean("validate_indices", false));
    Var x = b.op("gather", gather_inputs, {1, length, c});
    const Tensor& pos = g.get(p + "positional_embedding");
    x = g.add(x, b.floats("positional_embedding", {1, length, c}, std::vector<float>(pos.f32(), pos.f32() + pos.elements())));
    const bool mct = t.kind == TextEncoderKind::mct;
    const int modules = mct ? t.layers + 2 : t.layers;
    // A causal encoder (MobileCLIP-B) masks later positions: one [1, 1, T, T] const, 0 on and
    // below the diagonal and −10⁴ above it (far below any score, and finite in fp16), added to
    // every layer's attention scores.
    std::optional<Var> mask;
    if (t.causal) {
        std::vector<float> values(static_cast<size_t>(length * length), 0.0f);
        for (int64_t r = 0; r < length; ++r) {
            for (int64_t k = r + 1; k < length; ++k) values[static_cast<size_t>(r * length + k)] = -1e4f;
        }
        mask = b.floats("causal_mask", {1, 1, length, length}, values);
    }
    for (int i = 0; i < modules; ++i) {
        const std::string prefix = p + "transformer." + std::to_string(i);
        if (mct && (i == 0 || i == modules - 1)) {
            // The RepMixer block runs on the sequence as a [1, C, 1, L] image.
            Var image = b.op("transpose", {{"x", x}, {"perm", b.ints("perm", {0, 2, 1})}}, {1, c, length});
            image = b.op("expand_dims", {{"x", image}, {"axes", b.ints("axes", {2})}}, {1, c, 1, length});
            image = g.conv(image, prefix + ".token_mixer", 1, static_cast<int>(c));
            image = g.conv_ffn(image, prefix + ".ffn", static_cast<int>(c));
            image = b.op("squeeze", {{"x", image}, {"axes", b.ints("axes", {2})}}, {1, c, length});
            x = b.op("transpose", {{"x", image}, {"perm", b.ints("perm", {0, 2, 1})}}, {1, length, c});
            continue;
        }
        Var h = g.layer_norm(x, prefix + ".pre_norm_mha.0");
        x = g.add(x, g.mhsa(h, prefix + ".pre_norm_mha.1.qkv_proj", prefix + ".pre_norm_mha.1.out_proj", c / t.heads, mask ? &*mask : nullptr));
        h = g.layer_norm(x, prefix + ".pre_norm_ffn.0");
        h = g.gelu(g.linear(h, prefix + ".pre_norm_ffn.1", prefix + ".pre_norm_ffn.1"));
        x = g.add(x, g.linear(h, prefix + ".pre_norm_ffn.4", prefix + ".pre_norm_ffn.4"));
    }
    x = g.layer_norm(x, p + "final_layer_norm");
    // End-of-text pooling: the row at the largest token id (CLIP's EOT has the largest id).
    std::vector<std::pair<std::string, Var>> argmax_inputs = {{"x", ids}, {"axis", b.ints("axis", {-1}, true)}, {"keep_dims", b.boolean("keep_dims", false)}};
    if (ios17) argmax_inputs.emplace_back("output_dtype", b.text("output_dtype", "int32"));
    const Var eot = b.op("reduce_argmax", argmax_inputs, spec::INT32, {1});
    std::vector<std::pair<std::string, Var>> pick_inputs = {{"x", x}, {"indices", eot}, {"axis", b.ints("axis", {1}, true)}, {"batch_dims", b.ints("batch_dims", {1}, true)}};
    if (ios17) pick_inputs.emplace_back("validate_indices", b.boolean("validate_indices", false));
    x = b.op("gather", pick_inputs, {1, c});
    // mclip stores the projection [in, out]; linear takes [out, in].
    const Tensor& proj = g.get(p + "projection");
    Tensor proj_t = Tensor::zeros_f32({config.embed_dim, c});
    for (int64_t i = 0; i < c; ++i) {
        for (int64_t o = 0; o < config.embed_dim; ++o) proj_t.f32()[o * c + i] = proj.f32()[i * config.embed_dim + o];
    }
    spec::Operation* last = b.add_op("linear", "embedding");
    MilBuilder::bind(last, "x", x);
    MilBuilder::bind(last, "weight", b.weight("projection_weight", proj_t));
    MilBuilder::bind(last, "bias", b.floats("projection_bias", {config.embed_dim}, std::vector<float>(config.embed_dim, 0.0f)));
    b.output(last, "embedding", b.compute(), {1, config.embed_dim});
}

}  // namespace

void export_package(const ModelConfig& config, const TensorMap& tensors, const fs::path& output, const ExportOptions& options) {
    const bool image = options.encoder == "image";
    if (!image && options.encoder != "text") throw Error(ErrorCode::invalid_argument, "--encoder must be image or text");
    if (image && config.image.kind != ImageEncoderKind::mci) throw Error(ErrorCode::unsupported, "Core ML export supports the MCi image encoders (S0, S1, S2)");
    if (image && config.image.mci.attention_norm == MciAttentionNorm::layer_norm) {
        throw Error(ErrorCode::unsupported, "Core ML export of MCi image encoders with LayerNorm attention (MobileCLIP2-S3/S4) is not implemented");
    }
    if (!image && config.text.activation != MlpActivation::gelu) {
        throw Error(ErrorCode::unsupported, "Core ML export of QuickGELU text encoders (OpenAI CLIP) is not implemented");
    }
    const bool classifier = !options.class_labels.empty();
    if (classifier) {
        if (!image) throw Error(ErrorCode::invalid_argument, "--labels makes an image classifier: it needs --encoder image");
        const Tensor& w = options.class_weights;
        if (w.rank() != 2 || w.dim(0) != static_cast<int64_t>(options.class_labels.size()) || w.dim(1) != config.embed_dim) {
            throw Error(ErrorCode::internal, "the class weights do not match the labels and the embedding size");
        }
    }
    if (options.compute != "f16" && options.compute != "f32") throw Error(ErrorCode::invalid_argument, "--compute must be f16 or f32");
    if (options.target != "iOS16" && options.target != "iOS17") throw Error(ErrorCode::invalid_argument, "--target must be iOS16 or iOS17");
    const bool ios17 = options.target == "iOS17";
    const std::string opset = ios17 ? "CoreML7" : "CoreML6";
    const spec::DataType compute = options.compute == "f16" ? spec::FLOAT16 : spec::FLOAT32;

    spec::Model model;
    model.set_specificationversion(ios17 ? 8 : 7);
    auto* description = model.mutable_description();
    const int size = config.image_size();
    const int context = config.text.context;
    auto* input = description->add_input();
    if (image) {
        input->set_name("image");
        input->set_shortdescription("RGB image, " + std::to_string(size) + "x" + std::to_string(size));
        auto* image_type = input->mutable_type()->mutable_imagetype();
        image_type->set_width(size);
        image_type->set_height(size);
        image_type->set_colorspace(spec::ImageFeatureType::RGB);
    } else {
        input->set_name("text");
        input->set_shortdescription("CLIP BPE token ids, int32 [1, " + std::to_string(context) + "], zero-padded");
        auto* ids = input->mutable_type()->mutable_multiarraytype();
        ids->add_shape(1);
        ids->add_shape(context);
        ids->set_datatype(spec::ArrayFeatureType::INT32);
    }
    if (classifier) {
        // Vision reads these two as VNClassificationObservations.
        auto* label = description->add_output();
        label->set_name("classLabel");
        label->set_shortdescription("the most probable of " + std::to_string(options.class_labels.size()) + " labels");
        label->mutable_type()->mutable_stringtype();
        auto* probabilities = description->add_output();
        probabilities->set_name("classLabel_probs");
        probabilities->set_shortdescription("the probability of every label (softmax of logit scale × cosine)");
        probabilities->mutable_type()->mutable_dictionarytype()->mutable_stringkeytype();
        description->set_predictedfeaturename("classLabel");
        description->set_predictedprobabilitiesname("classLabel_probs");
    }
    auto* output_desc = description->add_output();
    output_desc->set_name("embedding");
    output_desc->set_shortdescription(options.encoder + " embedding (not normalized)");
    auto* array = output_desc->mutable_type()->mutable_multiarraytype();
    array->add_shape(1);
    array->add_shape(config.embed_dim);
    array->set_datatype(compute == spec::FLOAT16 ? spec::ArrayFeatureType::FLOAT16 : spec::ArrayFeatureType::FLOAT32);
    auto* metadata = description->mutable_metadata();
    metadata->set_shortdescription(config.display_name + " " + options.encoder + " encoder");
    metadata->set_author("mclip");
    (*metadata->mutable_userdefined())["mclip.architecture"] = config.name;
    (*metadata->mutable_userdefined())["mclip.encoder"] = options.encoder;
    (*metadata->mutable_userdefined())["mclip.weights"] = options.weights;

    auto* program = model.mutable_mlprogram();
    program->set_version(1);
    spec::Function& function = (*program->mutable_functions())["main"];
    function.set_opset(opset);
    auto* fn_input = function.add_inputs();
    fn_input->set_name(image ? "image" : "text");
    if (image) {
        set_tensor_type(fn_input->mutable_type(), spec::FLOAT32, {1, 3, size, size});
    } else {
        set_tensor_type(fn_input->mutable_type(), spec::INT32, {1, context});
    }
    spec::Block& block = (*function.mutable_block_specializations())[opset];

    MilBuilder b(&block, compute, options);
    if (image) {
        write_image_graph(b, config, tensors);
    } else {
        write_text_graph(b, config, tensors, ios17);
    }
    if (classifier) {
        write_classifier(b, config, options);
        block.add_outputs("classLabel");
        block.add_outputs("classLabel_probs");
        (*metadata->mutable_userdefined())["mclip.labels"] = std::to_string(options.class_labels.size());
    }
    block.add_outputs("embedding");

    // The package is assembled in a sibling folder and renamed into place whole.
    const fs::path target = output.lexically_normal().filename().empty() ? output.lexically_normal().parent_path() : output.lexically_normal();
    const fs::path staging = target.parent_path() / (target.filename().string() + ".partial-" + uuid().substr(0, 8));
    std::error_code ec;
    try {
        fs::create_directories(staging / "Data/com.apple.CoreML/weights");
        write_file(staging / "Data/com.apple.CoreML/weights/weight.bin", b.blobs().finish());
        std::string bytes;
        if (!model.SerializeToString(&bytes)) throw Error(ErrorCode::internal, "the Core ML specification did not serialize");
        write_file(staging / "Data/com.apple.CoreML/model.mlmodel", bytes);
        const std::string spec_id = uuid(), weights_id = uuid();
        nlohmann::ordered_json manifest;
        manifest["fileFormatVersion"] = "1.0.0";
        manifest["itemInfoEntries"][spec_id] = {{"author", "com.apple.CoreML"}, {"description", "CoreML Model Specification"},
                                                {"name", "model.mlmodel"}, {"path", "com.apple.CoreML/model.mlmodel"}};
        manifest["itemInfoEntries"][weights_id] = {{"author", "com.apple.CoreML"}, {"description", "CoreML Model Weights"},
                                                   {"name", "weights"}, {"path", "com.apple.CoreML/weights"}};
        manifest["rootModelIdentifier"] = spec_id;
        write_file(staging / "Manifest.json", manifest.dump(4) + "\n");
        if (fs::exists(target)) fs::remove_all(target);
        fs::rename(staging, target);
    } catch (...) {
        fs::remove_all(staging, ec);
        throw;
    }
}

}  // namespace mclip::coreml
