// mclip._mclip: the compiled half of the Python package, over the public C++ API only
// (include/mclip, libmclip.so). It takes inputs already sorted by kind (paths, encoded bytes,
// RGB arrays, strings), releases the GIL for decoding and inference, and returns numpy arrays.
// Everything a Python user touches directly (input types, batching, progress, the exception
// classes, docstrings) is in mclip/__init__.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mclip/mclip.h"
#include "mclip/model_file.h"

namespace py = pybind11;

namespace {

// The Python class of each ErrorCode, given by mclip/__init__.py. Kept for the life of the
// process (never decremented), so translating an error never races interpreter shutdown.
PyObject* error_classes[6] = {};

// classes: the class of each code, by the code's C++ name ("invalid_argument", ...).
void set_error_classes(const py::dict& classes) {
    const std::pair<mclip::ErrorCode, const char*> codes[] = {
        {mclip::ErrorCode::invalid_argument, "invalid_argument"}, {mclip::ErrorCode::invalid_input, "invalid_input"},
        {mclip::ErrorCode::io, "io"},                             {mclip::ErrorCode::unsupported, "unsupported"},
        {mclip::ErrorCode::network, "network"},                   {mclip::ErrorCode::internal, "internal"}};
    for (const auto& [code, name] : codes) {
        py::object cls = classes[py::str(name)];
        error_classes[static_cast<int>(code)] = cls.release().ptr();
    }
}

void raise_error(const mclip::Error& error) {
    PyObject* cls = error_classes[static_cast<int>(error.code())];
    if (!cls) cls = PyExc_RuntimeError;
    // Messages name files, whose bytes need not be UTF-8: never fail while reporting a failure.
    const std::string message = error.what();
    PyObject* text = PyUnicode_DecodeUTF8(message.data(), static_cast<Py_ssize_t>(message.size()), "replace");
    PyErr_SetObject(cls, text);
    Py_XDECREF(text);
}

[[noreturn]] void fail(mclip::ErrorCode code, const std::string& message) { throw mclip::Error(code, message); }

std::string shape_text(const py::array& array) {
    std::string text = "(";
    for (py::ssize_t i = 0; i < array.ndim(); ++i) text += (i ? ", " : "") + std::to_string(array.shape(i));
    return text + (array.ndim() == 1 ? ",)" : ")");
}

std::string dtype_text(const py::array& array) { return py::str(array.dtype()).cast<std::string>(); }

// An image as Python handed it over: held here (keeping the Python object alive) while the GIL
// is released, decoded and preprocessed without it.
struct ImageInput {
    enum class Kind { path, encoded, rgb };
    Kind kind = Kind::path;
    std::string path;                 // Kind::path: the file
    py::object owner;                 // the bytes or array whose memory is read below
    const uint8_t* data = nullptr;    // Kind::encoded: the file's bytes; Kind::rgb: H x W x 3 pixels
    size_t size = 0;
    int width = 0;
    int height = 0;
};

// items: a list of ("path", bytes), ("bytes", bytes) and ("rgb", uint8 array [H, W, 3]) pairs.
std::vector<ImageInput> take_images(const py::list& items) {
    std::vector<ImageInput> inputs;
    inputs.reserve(items.size());
    for (const py::handle item : items) {
        const auto pair = item.cast<py::tuple>();
        const auto kind = pair[0].cast<std::string>();
        ImageInput input;
        if (kind == "path") {
            input.kind = ImageInput::Kind::path;
            input.path = pair[1].cast<py::bytes>();
        } else if (kind == "bytes") {
            input.kind = ImageInput::Kind::encoded;
            input.owner = pair[1].cast<py::bytes>();
            char* data = nullptr;
            Py_ssize_t size = 0;
            if (PyBytes_AsStringAndSize(input.owner.ptr(), &data, &size) != 0) throw py::error_already_set();
            input.data = reinterpret_cast<const uint8_t*>(data);
            input.size = static_cast<size_t>(size);
        } else if (kind == "rgb") {
            input.kind = ImageInput::Kind::rgb;
            const auto array = pair[1].cast<py::array>();
            if (!array.dtype().is(py::dtype::of<uint8_t>())) {
                fail(mclip::ErrorCode::invalid_argument, "an image array must have dtype uint8 (0-255 RGB), got " + dtype_text(array));
            }
            if (array.ndim() != 3 || array.shape(2) != 3) {
                fail(mclip::ErrorCode::invalid_argument, "an image array must have shape (height, width, 3) (RGB), got " + shape_text(array));
            }
            if (array.shape(0) < 1 || array.shape(1) < 1 || array.shape(0) > INT32_MAX || array.shape(1) > INT32_MAX) {
                fail(mclip::ErrorCode::invalid_argument, "an image array must have at least one pixel and fewer than 2^31 rows and columns, got " + shape_text(array));
            }
            // Rows may be strided (a crop of a larger array); pixels must be packed R, G, B.
            const auto packed = py::array_t<uint8_t, py::array::c_style>::ensure(array);
            if (!packed) throw py::error_already_set();
            input.owner = packed;
            input.data = packed.data();
            input.height = static_cast<int>(packed.shape(0));
            input.width = static_cast<int>(packed.shape(1));
            input.size = static_cast<size_t>(packed.nbytes());
        } else {
            fail(mclip::ErrorCode::internal, "unknown image input kind " + kind);
        }
        inputs.push_back(std::move(input));
    }
    return inputs;
}

// Decodes and preprocesses inputs[i] into out (3 x size x size floats). Called without the GIL.
void preprocess_input(const ImageInput& input, size_t index, mclip::Preprocessor& preprocessor, const mclip::DecodeOptions& decode,
                      float* out) {
    switch (input.kind) {
        case ImageInput::Kind::path:
            preprocessor.run(mclip::decode_image_file(input.path, decode), out);
            break;
        case ImageInput::Kind::encoded:
            preprocessor.run(mclip::decode_image_memory({input.data, input.size}, "image bytes #" + std::to_string(index), decode), out);
            break;
        case ImageInput::Kind::rgb:
            preprocessor.run(input.data, input.width, input.height, static_cast<size_t>(input.width) * 3, out);
            break;
    }
}

py::array_t<float> to_array(const mclip::Embeddings& embeddings) {
    py::array_t<float> out({static_cast<py::ssize_t>(embeddings.rows), static_cast<py::ssize_t>(embeddings.dim)});
    if (!embeddings.values.empty()) std::memcpy(out.mutable_data(), embeddings.values.data(), embeddings.values.size() * sizeof(float));
    return out;
}

mclip::Embeddings to_embeddings(const py::array_t<float, py::array::c_style>& rows) {
    mclip::Embeddings e;
    e.rows = static_cast<int>(rows.shape(0));
    e.dim = static_cast<int>(rows.shape(1));
    e.values.assign(rows.data(), rows.data() + rows.size());
    return e;
}

// A label set and the model file it was computed with (class embeddings only make sense with the
// model that made them).
struct PyLabelSet {
    mclip::LabelSet set;
    std::string model_path;
};

// A loaded model, shared by the calls in flight so close() can drop it while another thread is
// mid-call. Calls on one model run concurrently (mclip.h).
struct LoadedModel {
    explicit LoadedModel(mclip::Model m) : model(std::move(m)) {}
    mclip::Model model;
};

class PyModel {
public:
    PyModel(const std::string& path_or_name, const std::string& precision, int threads, const std::string& backend) {
        mclip::ModelParams params = mclip::model_default_params();
        params.precision = precision;
        params.threads = threads;
        params.backend = backend;
        py::gil_scoped_release release;
        loaded_ = std::make_shared<LoadedModel>(mclip::Model::load(path_or_name, params));
    }

    // The model for one call: a reference of its own, so close() during the call frees nothing
    // the call still uses.
    std::shared_ptr<LoadedModel> loaded() const {
        if (!loaded_) fail(mclip::ErrorCode::invalid_argument, "the model is closed; load it again with mclip.load()");
        return loaded_;
    }
    std::shared_ptr<const mclip::Model> model() const {
        const std::shared_ptr<LoadedModel> loaded = this->loaded();
        return {loaded, &loaded->model};
    }

    void close() { loaded_.reset(); }
    bool closed() const { return !loaded_; }

    py::dict info() const {
        const mclip::ModelInfo& info = model()->info();
        py::dict d;
        d["path"] = info.path;
        d["architecture"] = info.architecture;
        d["name"] = info.name;
        d["dim"] = info.embed_dim;
        d["image_size"] = info.image_size;
        d["context_length"] = info.context_length;
        d["logit_scale"] = info.logit_scale;
        d["precision"] = info.precision;
        d["backend"] = info.backend;
        d["threads"] = info.threads;
        d["weights"] = info.weights;
        d["has_tokenizer"] = info.has_tokenizer;
        d["int8_calibrated"] = info.int8_calibrated;
        const mclip::PreprocessParams& p = info.preprocess;
        py::dict preprocess;
        preprocess["size"] = p.size;
        preprocess["resize_size"] = p.resize_size == 0 ? p.size : p.resize_size;
        preprocess["resize_mode"] = mclip::to_string(p.resize_mode);
        preprocess["interpolation"] = mclip::to_string(p.interpolation);
        preprocess["mean"] = py::make_tuple(p.mean[0], p.mean[1], p.mean[2]);
        preprocess["std"] = py::make_tuple(p.std[0], p.std[1], p.std[2]);
        d["preprocess"] = preprocess;
        return d;
    }

    // float32 [n, 3, S, S]: the images as the model sees them.
    py::array_t<float> preprocess_images(const py::list& items, bool exif) const {
        const auto model = this->model();
        const std::vector<ImageInput> inputs = take_images(items);
        const int size = model->image_size();
        py::array_t<float> out({static_cast<py::ssize_t>(inputs.size()), py::ssize_t{3}, static_cast<py::ssize_t>(size),
                                static_cast<py::ssize_t>(size)});
        float* pixels = out.mutable_data();
        {
            py::gil_scoped_release release;
            preprocess_all(*model, inputs, exif, pixels);
        }
        return out;
    }

    py::array_t<float> encode_images(const py::list& items, bool normalize, bool exif) const {
        const auto model = this->model();
        const std::vector<ImageInput> inputs = take_images(items);
        mclip::Embeddings embeddings;
        {
            py::gil_scoped_release release;
            const int size = model->image_size();
            std::vector<float> pixels(inputs.size() * 3 * static_cast<size_t>(size) * size);
            preprocess_all(*model, inputs, exif, pixels.data());
            embeddings = model->embed_images(pixels.data(), static_cast<int>(inputs.size()));
            if (normalize) mclip::normalize_rows(embeddings);
        }
        return to_array(embeddings);
    }

    py::array_t<float> encode_pixels(const py::array& array, bool normalize) const {
        const auto model = this->model();
        const int size = model->image_size();
        if (!array.dtype().is(py::dtype::of<float>())) {
            fail(mclip::ErrorCode::invalid_argument, "preprocessed images must have dtype float32, got " + dtype_text(array));
        }
        if (array.ndim() != 4 || array.shape(1) != 3 || array.shape(2) != size || array.shape(3) != size) {
            fail(mclip::ErrorCode::invalid_argument, "preprocessed images must have shape (n, 3, " + std::to_string(size) + ", " +
                                                         std::to_string(size) + "), got " + shape_text(array));
        }
        const auto pixels = py::array_t<float, py::array::c_style>::ensure(array);
        if (!pixels) throw py::error_already_set();
        mclip::Embeddings embeddings;
        {
            py::gil_scoped_release release;
            embeddings = model->embed_images(pixels.data(), static_cast<int>(pixels.shape(0)));
            if (normalize) mclip::normalize_rows(embeddings);
        }
        return to_array(embeddings);
    }

    py::array_t<float> encode_texts(const std::vector<std::string>& texts, bool normalize) const {
        const auto loaded = this->loaded();
        mclip::Embeddings embeddings;
        {
            py::gil_scoped_release release;
            embeddings = loaded->model.embed_texts(texts);
            if (normalize) mclip::normalize_rows(embeddings);
        }
        return to_array(embeddings);
    }

    py::array_t<float> encode_tokens(const py::array& array, bool normalize) const {
        const auto loaded = this->loaded();
        const mclip::Model* model = &loaded->model;
        const int context = model->info().context_length;
        if (!array.dtype().is(py::dtype::of<int32_t>()) && !array.dtype().is(py::dtype::of<int64_t>())) {
            fail(mclip::ErrorCode::invalid_argument, "token ids must have dtype int32 or int64, got " + dtype_text(array));
        }
        if (array.ndim() != 2 || array.shape(1) != context) {
            fail(mclip::ErrorCode::invalid_argument, "token ids must have shape (n, " + std::to_string(context) + "), got " + shape_text(array));
        }
        // The range check of embed_tokens applies to int32; int64 ids outside it are refused here.
        const auto wide = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(array);
        if (!wide) throw py::error_already_set();
        std::vector<int32_t> ids(static_cast<size_t>(wide.size()));
        for (size_t i = 0; i < ids.size(); ++i) {
            const int64_t id = wide.data()[i];
            if (id < INT32_MIN || id > INT32_MAX) fail(mclip::ErrorCode::invalid_argument, "token id " + std::to_string(id) + " is out of range");
            ids[i] = static_cast<int32_t>(id);
        }
        mclip::Embeddings embeddings;
        {
            py::gil_scoped_release release;
            embeddings = model->embed_tokens(ids.data(), static_cast<int>(wide.shape(0)));
            if (normalize) mclip::normalize_rows(embeddings);
        }
        return to_array(embeddings);
    }

    py::array_t<int32_t> tokenize(const std::vector<std::string>& texts) const {
        const auto model = this->model();
        const int context = model->info().context_length;
        std::vector<int32_t> ids;
        {
            py::gil_scoped_release release;
            ids = model->tokenize(texts);
        }
        py::array_t<int32_t> out({static_cast<py::ssize_t>(texts.size()), static_cast<py::ssize_t>(context)});
        if (!ids.empty()) std::memcpy(out.mutable_data(), ids.data(), ids.size() * sizeof(int32_t));
        return out;
    }

    PyLabelSet labels(const std::vector<std::string>& labels, const std::vector<std::string>& templates, const std::string& cache_dir) const {
        const auto loaded = this->loaded();
        mclip::LabelSetOptions options;
        options.templates = templates;
        options.cache_dir = cache_dir;
        PyLabelSet set;
        set.model_path = loaded->model.info().path;
        py::gil_scoped_release release;
        set.set = loaded->model.labels(labels, options);
        return set;
    }

    // One result per row of embeddings (not normalized, as encode_images(normalize=False) gives
    // them), with the fields of `mclip classify --json`.
    py::list classify(const py::array& array, const PyLabelSet& labels, int top_k, float threshold) const {
        const auto model = this->model();
        if (labels.model_path != model->info().path) {
            fail(mclip::ErrorCode::invalid_argument, "the label set was made by another model (" + labels.model_path + "); make it with this model's labels()");
        }
        if (!array.dtype().is(py::dtype::of<float>()) || array.ndim() != 2 || array.shape(1) != model->embed_dim()) {
            fail(mclip::ErrorCode::invalid_argument, "image embeddings must be float32 (n, " + std::to_string(model->embed_dim()) + "), got " +
                                                         dtype_text(array) + " " + shape_text(array));
        }
        const mclip::Embeddings embeddings = to_embeddings(py::array_t<float, py::array::c_style>::ensure(array));
        std::vector<mclip::Classification> results;
        {
            py::gil_scoped_release release;
            for (int r = 0; r < embeddings.rows; ++r) results.push_back(model->classify(embeddings.row(r), labels.set, top_k, threshold));
        }
        py::list out;
        for (const mclip::Classification& c : results) {
            py::list top;
            for (const mclip::Score& s : c.top) {
                py::dict score;
                score["label"] = s.label;
                score["probability"] = s.probability;
                score["logit"] = s.logit;
                score["cosine"] = s.cosine;
                top.append(score);
            }
            py::dict result;
            result["label"] = c.label;
            result["confidence"] = c.confidence;
            result["unknown"] = c.unknown;
            result["top_k"] = top;
            out.append(result);
        }
        return out;
    }

private:
    static void preprocess_all(const mclip::Model& model, const std::vector<ImageInput>& inputs, bool exif, float* pixels) {
        mclip::DecodeOptions decode;
        decode.apply_exif_orientation = exif;
        mclip::Preprocessor preprocessor(model.info().preprocess);
        const size_t floats = 3 * static_cast<size_t>(model.image_size()) * model.image_size();
        for (size_t i = 0; i < inputs.size(); ++i) preprocess_input(inputs[i], i, preprocessor, decode, pixels + i * floats);
    }

    std::shared_ptr<LoadedModel> loaded_;
};

}  // namespace

PYBIND11_MODULE(_mclip, m) {
    m.doc() = "The compiled half of mclip; use the mclip package, not this module.";

    py::register_exception_translator([](std::exception_ptr pending) {
        try {
            if (pending) std::rethrow_exception(pending);
        } catch (const mclip::Error& error) {
            raise_error(error);
        }
    });
    m.def("_set_error_classes", &set_error_classes);

    m.def("version", &mclip::version);
    m.def("precision_names", &mclip::precision_names);
    m.def("default_templates", &mclip::default_templates);
    m.def("label_preset", [](const std::string& name) { return mclip::label_preset(name); });
    m.def("label_preset_names", &mclip::label_preset_names);
    m.def("default_cache_dir", [] { return mclip::default_cache_dir().string(); });
    m.def("known_models", [] {
        std::vector<std::string> names;
        for (const mclip::KnownModel& model : mclip::known_models()) names.push_back(model.name);
        return names;
    });
    m.def("backends", [] {
        py::list list;
        for (const mclip::BackendInfo& b : mclip::backends()) {
            py::dict d;
            d["name"] = b.name;
            d["available"] = b.available;
            d["unavailable_reason"] = b.unavailable_reason;
            d["precisions"] = b.precisions;
            d["native_precisions"] = b.native_precisions;
            d["instruction_sets"] = b.instruction_sets;
            list.append(d);
        }
        return list;
    });

    py::class_<PyLabelSet>(m, "LabelSet")
        .def_property_readonly("labels", [](const PyLabelSet& l) { return l.set.labels; })
        .def_property_readonly("templates", [](const PyLabelSet& l) { return l.set.templates; })
        .def_property_readonly("embeddings", [](const PyLabelSet& l) { return to_array(l.set.classes); })
        .def_property_readonly("from_cache", [](const PyLabelSet& l) { return l.set.from_cache; })
        .def_property_readonly("seconds", [](const PyLabelSet& l) { return l.set.seconds; })
        .def_property_readonly("cache_entry", [](const PyLabelSet& l) { return l.set.cache_entry; })
        .def_property_readonly("model_path", [](const PyLabelSet& l) { return l.model_path; })
        .def("__len__", [](const PyLabelSet& l) { return l.set.labels.size(); });

    py::class_<PyModel>(m, "Model")
        .def(py::init<const std::string&, const std::string&, int, const std::string&>())
        .def("close", &PyModel::close)
        .def_property_readonly("closed", &PyModel::closed)
        .def("info", &PyModel::info)
        .def("preprocess_images", &PyModel::preprocess_images)
        .def("encode_images", &PyModel::encode_images)
        .def("encode_pixels", &PyModel::encode_pixels)
        .def("encode_texts", &PyModel::encode_texts)
        .def("encode_tokens", &PyModel::encode_tokens)
        .def("tokenize", &PyModel::tokenize)
        .def("labels", &PyModel::labels)
        .def("classify", &PyModel::classify);
}
