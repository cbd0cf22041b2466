#include "coreml/import.h"

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"
#include "models/reparam.h"

namespace mclip::coreml {

namespace {

// One op of the program that carries weights, with its constants decoded.
struct Layer {
    std::string kind;  // "conv", "linear", "batch_norm", "scale" (mul by a per-channel const)
    std::string name;  // the op's name, for messages
    Tensor weight, bias;
    int64_t groups = 1;
    Tensor mean, variance, gamma, beta;
    float epsilon = 0;
};

class Program {
public:
    explicit Program(const Package& package) : package_(package), block_(main_block(package.model)) {
        for (const auto& op : block_.operations()) {
            for (const auto& output : op.outputs()) producer_[output.name()] = &op;
        }
    }

    std::string binding(const spec::Operation& op, const std::string& param) const {
        const auto found = op.inputs().find(param);
        if (found == op.inputs().end() || found->second.arguments_size() != 1 || !found->second.arguments(0).has_name()) return {};
        return found->second.arguments(0).name();
    }

    // The constant feeding `param` (decoded to float32), or nullptr-like empty tensor when the
    // parameter is missing or not a constant.
    const spec::Operation* const_op(const spec::Operation& op, const std::string& param) const {
        const auto found = producer_.find(binding(op, param));
        if (found == producer_.end()) return nullptr;
        const std::string& type = found->second->type();
        return type == "const" || type.rfind("constexpr_", 0) == 0 ? found->second : nullptr;
    }

    Tensor constant(const spec::Operation& op, const std::string& param) const {
        const spec::Operation* c = const_op(op, param);
        if (!c) return {};
        return dense_constant(package_, *c);
    }

    int64_t scalar_int(const spec::Operation& op, const std::string& param, int64_t fallback) const {
        const spec::Operation* c = const_op(op, param);
        if (!c || c->type() != "const") return fallback;
        const RawValue raw = raw_value(package_, c->attributes().at("val"), "op '" + op_name(*c) + "'");
        if (raw.dtype != spec::INT32 || raw.bytes.size() != 4) return fallback;
        int32_t v;
        std::memcpy(&v, raw.bytes.data(), 4);
        return v;
    }

    const spec::Block& block() const { return block_; }

    // The op whose output is `name`, or nullptr for an input or an unknown name.
    const spec::Operation* producer(const std::string& name) const {
        const auto found = producer_.find(name);
        return found == producer_.end() ? nullptr : found->second;
    }

private:
    const Package& package_;
    const spec::Block& block_;
    std::map<std::string, const spec::Operation*> producer_;
};

std::string describe(const Layer& layer) {
    std::string text = layer.kind + " '" + layer.name + "'";
    if (!layer.weight.empty()) text += " weight " + shape_to_string(layer.weight.shape());
    if (layer.kind == "conv") text += " groups " + std::to_string(layer.groups);
    if (!layer.gamma.empty()) text += " [" + std::to_string(layer.gamma.elements()) + "]";
    return text;
}

// The parameterized ops in program order. The ImageType scale/bias ops are preprocessing, and
// muls by scalars (attention scaling) carry no weights.
// Text programs also carry weights in gather (the token table), add (the positional embedding)
// and layer_norm.
std::vector<Layer> collect_layers(const Program& program, const std::set<const spec::Operation*>& skip, bool text) {
    std::vector<Layer> layers;
    for (const auto& op : program.block().operations()) {
        if (skip.count(&op)) continue;
        Layer layer;
        layer.name = op_name(op);
        if (op.type() == "conv") {
            layer.kind = "conv";
            layer.weight = program.constant(op, "weight");
            layer.bias = program.constant(op, "bias");
            layer.groups = program.scalar_int(op, "groups", 1);
            if (layer.weight.empty()) throw Error(ErrorCode::invalid_input, "conv '" + layer.name + "' has no constant weight");
        } else if (op.type() == "linear") {
            layer.kind = "linear";
            layer.weight = program.constant(op, "weight");
            layer.bias = program.constant(op, "bias");
            if (layer.weight.empty()) throw Error(ErrorCode::invalid_input, "linear '" + layer.name + "' has no constant weight");
        } else if (op.type() == "batch_norm") {
            layer.kind = "batch_norm";
            layer.mean = program.constant(op, "mean");
            layer.variance = program.constant(op, "variance");
            layer.gamma = program.constant(op, "gamma");
            layer.beta = program.constant(op, "beta");
            const Tensor eps = program.constant(op, "epsilon");
            layer.epsilon = eps.empty() ? 1e-5f : eps.f32()[0];
        } else if (text && op.type() == "gather") {
            layer.kind = "gather";
            layer.weight = program.constant(op, "x");
            if (layer.weight.empty()) continue;
        } else if (text && op.type() == "add") {
            Tensor y = program.constant(op, "y");
            if (y.empty()) y = program.constant(op, "x");
            if (y.empty() || y.elements() <= 1) continue;
            layer.kind = "add";
            layer.weight = y;
        } else if (text && op.type() == "layer_norm") {
            layer.kind = "layer_norm";
            layer.gamma = program.constant(op, "gamma");
            layer.beta = program.constant(op, "beta");
            if (layer.gamma.empty() || layer.beta.empty()) throw Error(ErrorCode::invalid_input, "layer_norm '" + layer.name + "' has no constant gamma and beta");
        } else if (op.type() == "mul") {
            Tensor y = program.constant(op, "y");
            if (y.empty()) y = program.constant(op, "x");
            if (y.empty() || y.elements() <= 1) continue;
            layer.kind = "scale";
            layer.weight = y;
        } else {
            continue;
        }
        layers.push_back(std::move(layer));
    }
    return layers;
}

// Walks the expected layer sequence of an architecture over the program's layers.
class Matcher {
public:
    Matcher(const std::vector<Layer>& layers, std::string arch) : layers_(layers), arch_(std::move(arch)) {}

    const Layer& next(const std::string& kind, const std::string& what, const Shape& weight_shape, int64_t groups = 1) {
        if (pos_ >= layers_.size()) fail(what, kind + " " + shape_to_string(weight_shape), "the end of the program");
        const Layer& layer = layers_[pos_];
        bool ok = layer.kind == kind;
        if (ok && kind != "batch_norm") ok = layer.weight.shape() == weight_shape;
        if (ok && kind == "conv") ok = layer.groups == groups;
        if (ok && kind == "batch_norm") ok = layer.gamma.elements() == weight_shape.at(0) && layer.mean.elements() == weight_shape.at(0);
        if (kind == "layer_norm") ok = layer.kind == kind && layer.gamma.elements() == weight_shape.at(0) && layer.beta.elements() == weight_shape.at(0);
        // The positional embedding may be stored with leading unit dimensions.
        if (kind == "add" && layer.kind == kind) ok = layer.weight.elements() == shape_elements(weight_shape) && layer.weight.shape().back() == weight_shape.back();
        if (!ok) {
            fail(what, kind + (kind == "batch_norm" || kind == "layer_norm" ? " [" + std::to_string(weight_shape.at(0)) + "]" : " weight " + shape_to_string(weight_shape)) +
                           (kind == "conv" ? " groups " + std::to_string(groups) : ""),
                 describe(layer));
        }
        ++pos_;
        return layer;
    }

    // The kind of the next layer ("" at the end), for optional layers.
    std::string peek() const { return pos_ < layers_.size() ? layers_[pos_].kind : std::string(); }

    void finish() const {
        if (pos_ != layers_.size()) {
            throw Error(ErrorCode::invalid_input, "not a " + arch_ + " encoder: " + std::to_string(layers_.size() - pos_) +
                                                      " weighted ops follow the last expected layer, first " + describe(layers_[pos_]));
        }
    }

private:
    [[noreturn]] void fail(const std::string& what, const std::string& expected, const std::string& found) const {
        throw Error(ErrorCode::invalid_input, "not a " + arch_ + " encoder: weighted op #" + std::to_string(pos_ + 1) + " should be " +
                                                  what + " (" + expected + "), found " + found);
    }

    const std::vector<Layer>& layers_;
    std::string arch_;
    size_t pos_ = 0;
};

Tensor bias_or_zeros(const Layer& layer, int64_t n) {
    if (!layer.bias.empty()) return layer.bias.reshaped({n});
    return Tensor::zeros_f32({n});
}

void put(TensorMap& out, const std::string& name, const Layer& layer, int64_t out_channels) {
    out[name + ".weight"] = layer.weight;
    out[name + ".bias"] = bias_or_zeros(layer, out_channels);
}

TensorMap map_mci(const ModelConfig& config, const std::vector<Layer>& layers) {
    const MciConfig& m = config.image.mci;
    Matcher match(layers, config.display_name + " image");
    TensorMap out;
    const std::string p = "img.";
    const int c0 = m.widths[0];
    put(out, p + "patch_embed.0", match.next("conv", "stem conv 0", {c0, 3, 3, 3}), c0);
    put(out, p + "patch_embed.1", match.next("conv", "stem conv 1", {c0, 1, 3, 3}, c0), c0);
    put(out, p + "patch_embed.2", match.next("conv", "stem conv 2", {c0, c0, 1, 1}), c0);
    for (int s = 0; s < m.stages(); ++s) {
        const int c = m.widths[s];
        const int hidden = m.mlp_ratio * c;
        const bool attention = m.attention_stage(s);
        if (attention) {
            const int k = m.cpe_kernel;
            put(out, p + "network." + std::to_string(m.cpe_index(s)), match.next("conv", "RepCPE conv", {c, 1, k, k}, c), c);
        }
        for (int b = 0; b < m.depths[s]; ++b) {
            const std::string block = p + "network." + std::to_string(m.stage_index(s)) + "." + std::to_string(b);
            const std::string what = "stage " + std::to_string(s) + " block " + std::to_string(b);
            if (!attention) {
                const int k = m.mixer_kernel;
                put(out, block + ".token_mixer", match.next("conv", what + " RepMixer conv", {c, 1, k, k}, c), c);
            } else {
                // BN(x) = t ⊙ x + u folds into qkv; λ1 scales proj. Programs written from folded
                // weights (mclip's export) have neither op.
                BatchNormAffine norm{std::vector<float>(c, 1.0f), std::vector<float>(c, 0.0f)};
                if (match.peek() == "batch_norm") {
                    const Layer& bn = match.next("batch_norm", what + " attention norm", {c});
                    for (int i = 0; i < c; ++i) {
                        norm.scale[i] = bn.gamma.f32()[i] / std::sqrt(bn.variance.f32()[i] + bn.epsilon);
                        norm.shift[i] = bn.beta.f32()[i] - bn.mean.f32()[i] * norm.scale[i];
                    }
                }
                const Layer& qkv = match.next("linear", what + " qkv", {3 * c, c});
                const Layer& proj = match.next("linear", what + " attention projection", {c, c});
                std::vector<float> lambda(c, 1.0f);
                if (match.peek() == "scale") {
                    const Layer& scale = match.next("scale", what + " layer scale", {c, 1, 1});
                    for (int i = 0; i < c; ++i) lambda[i] = scale.weight.f32()[i];
                }
                const FoldedConv folded_qkv = fold_input_affine(qkv.weight, qkv.bias, norm);
                out[block + ".qkv.weight"] = folded_qkv.weight;
                out[block + ".qkv.bias"] = folded_qkv.bias;
                FoldedConv folded_proj{proj.weight.clone(), bias_or_zeros(proj, c).clone()};
                scale_folded(folded_proj, lambda);
                out[block + ".proj.weight"] = folded_proj.weight;
                out[block + ".proj.bias"] = folded_proj.bias;
            }
            const int kf = m.ffn_kernel;
            put(out, block + ".ffn.dw", match.next("conv", what + " ConvFFN depthwise conv", {c, 1, kf, kf}, c), c);
            put(out, block + ".ffn.fc1", match.next("conv", what + " ConvFFN fc1", {hidden, c, 1, 1}), hidden);
            put(out, block + ".ffn.fc2", match.next("conv", what + " ConvFFN fc2", {c, hidden, 1, 1}), c);
        }
        if (s + 1 < m.stages()) {
            const int cout = m.widths[s + 1];
            const int k = m.downsample_kernel;
            const std::string proj = p + "network." + std::to_string(m.downsample_index(s)) + ".proj";
            const std::string what = "PatchEmbed " + std::to_string(s);
            put(out, proj + ".0", match.next("conv", what + " large-kernel conv", {cout, 1, k, k}, c), cout);
            if (m.downsample_se[s]) {
                const int r = cout / m.se_divisor;
                put(out, proj + ".0.se.fc1", match.next("conv", what + " squeeze-excite reduce", {r, cout, 1, 1}), r);
                put(out, proj + ".0.se.fc2", match.next("conv", what + " squeeze-excite expand", {cout, r, 1, 1}), cout);
            }
            put(out, proj + ".1", match.next("conv", what + " 1×1 conv", {cout, cout, 1, 1}), cout);
        }
    }
    const int c3 = m.last_width();
    const int c_exp = 2 * c3;
    const int r = c_exp / m.conv_exp_se_divisor;
    put(out, p + "conv_exp", match.next("conv", "conv_exp", {c_exp, 1, 3, 3}, c3), c_exp);
    put(out, p + "conv_exp.se.fc1", match.next("conv", "conv_exp squeeze-excite reduce", {r, c_exp, 1, 1}), r);
    put(out, p + "conv_exp.se.fc2", match.next("conv", "conv_exp squeeze-excite expand", {c_exp, r, 1, 1}), c_exp);
    const Layer& head = match.next("linear", "head projection", {config.embed_dim, c_exp});
    // mclip stores the projection [in, out]; the program's linear has it [out, in].
    Tensor proj = Tensor::zeros_f32({c_exp, config.embed_dim});
    for (int o = 0; o < config.embed_dim; ++o) {
        for (int i = 0; i < c_exp; ++i) proj.f32()[static_cast<int64_t>(i) * config.embed_dim + o] = head.weight.f32()[static_cast<int64_t>(o) * c_exp + i];
    }
    if (!head.bias.empty()) {
        for (int64_t i = 0; i < head.bias.elements(); ++i) {
            if (head.bias.f32()[i] != 0.0f) throw Error(ErrorCode::invalid_input, "the head projection has a non-zero bias, which MobileCLIP's has not");
        }
    }
    out[p + "head.proj"] = proj;
    match.finish();
    return out;
}

// A transposed copy of a [rows, cols] matrix: the programs' linear weights are [out, in], mclip
// stores projections [in, out].
Tensor transposed(const Tensor& m) {
    const int64_t rows = m.dim(0), cols = m.dim(1);
    Tensor t = Tensor::zeros_f32({cols, rows});
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) t.f32()[c * rows + r] = m.f32()[r * cols + c];
    }
    return t;
}

void require_zero_bias(const Layer& layer, const std::string& what) {
    if (layer.bias.empty()) return;
    for (int64_t i = 0; i < layer.bias.elements(); ++i) {
        if (layer.bias.f32()[i] != 0.0f) throw Error(ErrorCode::invalid_input, "the " + what + " has a non-zero bias, which MobileCLIP's has not");
    }
}

TensorMap map_text(const ModelConfig& config, const std::vector<Layer>& layers) {
    const TextEncoderConfig& t = config.text;
    Matcher match(layers, config.display_name + " text");
    TensorMap out;
    const std::string p = "txt.";
    const int c = t.width;
    out[p + "token_embedding"] = match.next("gather", "token embedding", {t.vocab, c}).weight;
    out[p + "positional_embedding"] = match.next("add", "positional embedding", {t.context, c}).weight.reshaped({t.context, c});
    const bool mct = t.kind == TextEncoderKind::mct;
    const int modules = mct ? t.layers + 2 : t.layers;
    for (int i = 0; i < modules; ++i) {
        const std::string prefix = p + "transformer." + std::to_string(i);
        const std::string what = "layer " + std::to_string(i);
        if (mct && (i == 0 || i == modules - 1)) {
            const int k = t.mixer_kernel;
            put(out, prefix + ".token_mixer", match.next("conv", what + " RepMixer conv", {c, 1, 1, k}, c), c);
            put(out, prefix + ".ffn.dw", match.next("conv", what + " ConvFFN depthwise conv", {c, 1, 1, k}, c), c);
            put(out, prefix + ".ffn.fc1", match.next("conv", what + " ConvFFN fc1", {t.ffn, c, 1, 1}), t.ffn);
            put(out, prefix + ".ffn.fc2", match.next("conv", what + " ConvFFN fc2", {c, t.ffn, 1, 1}), c);
            continue;
        }
        auto norm = [&](const std::string& name, const std::string& label) {
            const Layer& ln = match.next("layer_norm", what + " " + label, {c});
            out[prefix + name + ".weight"] = ln.gamma.reshaped({c});
            out[prefix + name + ".bias"] = ln.beta.reshaped({c});
        };
        norm(".pre_norm_mha.0", "attention LayerNorm");
        put(out, prefix + ".pre_norm_mha.1.qkv_proj", match.next("linear", what + " qkv", {3 * c, c}), 3 * c);
        put(out, prefix + ".pre_norm_mha.1.out_proj", match.next("linear", what + " attention projection", {c, c}), c);
        norm(".pre_norm_ffn.0", "FFN LayerNorm");
        put(out, prefix + ".pre_norm_ffn.1", match.next("linear", what + " FFN up", {t.ffn, c}), t.ffn);
        put(out, prefix + ".pre_norm_ffn.4", match.next("linear", what + " FFN down", {c, t.ffn}), c);
    }
    const Layer& final_norm = match.next("layer_norm", "final LayerNorm", {c});
    out[p + "final_layer_norm.weight"] = final_norm.gamma.reshaped({c});
    out[p + "final_layer_norm.bias"] = final_norm.beta.reshaped({c});
    const Layer& projection = match.next("linear", "projection", {config.embed_dim, c});
    require_zero_bias(projection, "text projection");
    out[p + "projection"] = transposed(projection.weight);
    match.finish();
    return out;
}

}  // namespace

ImportedEncoder import_text_encoder(const Package& package) {
    if (!package.model.has_mlprogram()) throw Error(ErrorCode::invalid_input, package.root.string() + ": not an ML Program (only ML Programs can be imported)");
    const auto& description = package.model.description();
    if (description.input_size() != 1 || !description.input(0).type().has_multiarraytype() ||
        description.input(0).type().multiarraytype().datatype() != spec::ArrayFeatureType::INT32 ||
        description.input(0).type().multiarraytype().shape_size() != 2) {
        throw Error(ErrorCode::invalid_input, package.root.string() + ": a text encoder package has exactly one int32 [1, context] input");
    }
    const int64_t context = description.input(0).type().multiarraytype().shape(1);
    const Program program(package);
    // A causal encoder adds a [.., T, T] mask to its attention scores: that add carries no weights,
    // and says which architectures can match.
    std::set<const spec::Operation*> masks;
    for (const auto& op : program.block().operations()) {
        if (op.type() != "add") continue;
        const Tensor y = program.constant(op, "y");
        if (y.rank() >= 2 && y.dim(y.rank() - 1) == context && y.dim(y.rank() - 2) == context) masks.insert(&op);
    }
    const bool causal = !masks.empty();
    const std::vector<Layer> layers = collect_layers(program, masks, true);
    std::string errors;
    for (const ModelConfig& config : model_configs()) {
        // The weights cannot tell GELU from QuickGELU (OpenAI CLIP); the programs mclip and
        // coremltools write for MobileCLIP use `gelu`.
        if (config.text.context != context || config.text.causal != causal || config.text.activation != MlpActivation::gelu) continue;
        try {
            ImportedEncoder result;
            result.tensors = map_text(config, layers);
            result.config = config;
            return result;
        } catch (const Error& e) {
            errors += std::string("\n  ") + e.what();
        }
    }
    throw Error(ErrorCode::invalid_input, package.root.string() + ": the program is not a MobileCLIP text encoder mclip knows (context " +
                                              std::to_string(context) + (causal ? ", causal" : "") + "):" +
                                              (errors.empty() ? std::string("\n  no architecture has this context length and mask") : errors));
}

ImportedEncoder import_image_encoder(const Package& package) {
    if (!package.model.has_mlprogram()) throw Error(ErrorCode::invalid_input, package.root.string() + ": not an ML Program (only ML Programs can be imported)");
    const auto& description = package.model.description();
    if (description.input_size() != 1 || !description.input(0).type().has_imagetype()) {
        throw Error(ErrorCode::invalid_input, package.root.string() + ": an image encoder package has exactly one image input");
    }
    if (description.output_size() < 1) throw Error(ErrorCode::invalid_input, package.root.string() + ": the package has no output");
    const auto& image = description.input(0).type().imagetype();
    if (image.width() != image.height() || image.colorspace() != spec::ImageFeatureType::RGB) {
        throw Error(ErrorCode::invalid_input, package.root.string() + ": the image input must be square RGB (it is " + std::to_string(image.width()) +
                                                  "x" + std::to_string(image.height()) + ")");
    }
    const nlohmann::json report = inspect(package.root);
    ImportedEncoder result;
    result.image = true;
    std::set<const spec::Operation*> preprocessing;
    if (!report["preprocessing"].empty()) {
        const auto& pre = report["preprocessing"][0];
        result.scale = pre["scale"].get<float>();
        for (int c = 0; c < 3; ++c) result.bias[c] = pre["bias"][c].get<float>();
        for (const auto& op : main_block(package.model).operations()) {
            for (const auto& step : pre["ops"]) {
                if (op_name(op) == step["op"].get<std::string>()) preprocessing.insert(&op);
            }
        }
    }
    const Program program(package);
    // A classifier (as `mclip export coreml --labels` and coremltools write them) ends in a
    // linear layer of class weights feeding softmax and `classify`: the encoder is what precedes it.
    std::set<const spec::Operation*> skipped = preprocessing;
    for (const auto& op : program.block().operations()) {
        if (op.type() != "classify") continue;
        const spec::Operation* step = program.producer(program.binding(op, "probabilities"));
        for (int depth = 0; step && step->type() != "linear" && depth < 8; ++depth) step = program.producer(program.binding(*step, "x"));
        if (!step) throw Error(ErrorCode::invalid_input, package.root.string() + ": the classifier's probabilities come from no linear layer");
        skipped.insert(step);
    }
    const std::vector<Layer> layers = collect_layers(program, skipped, false);
    std::string errors;
    for (const ModelConfig& config : model_configs()) {
        if (config.image.kind != ImageEncoderKind::mci || config.image_size() != image.width()) continue;
        // MCi3/MCi4's LayerNorm attention has no importer (nor exporter) yet.
        if (config.image.mci.attention_norm != MciAttentionNorm::batch_norm) continue;
        try {
            result.tensors = map_mci(config, layers);
            result.config = config;
            // Core ML: pixel × scale + bias; mclip: (pixel / 255 − mean) / std.
            for (int c = 0; c < 3; ++c) {
                const double std_dev = 1.0 / (255.0 * result.scale);
                result.config.preprocess.std[c] = static_cast<float>(std_dev);
                result.config.preprocess.mean[c] = static_cast<float>(-result.bias[c] * std_dev);
            }
            return result;
        } catch (const Error& e) {
            errors += std::string("\n  ") + e.what();
        }
    }
    throw Error(ErrorCode::invalid_input, package.root.string() + ": the program is not a MobileCLIP image encoder mclip knows (" +
                                              std::to_string(image.width()) + "x" + std::to_string(image.height()) + " input):" +
                                              (errors.empty() ? std::string("\n  no MCi architecture takes this input size") : errors));
}

}  // namespace mclip::coreml
