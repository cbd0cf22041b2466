#include "server.h"

#include <civetweb.h>
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "batcher.h"
#include "http_util.h"
#include "metrics.h"
#include "tls.h"
#include "web_assets.h"

namespace mclip::server {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

// An answer other than 200, with the message the client gets in {"error": {...}}.
struct HttpError {
    int status;
    std::string message;
};

const char* status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 426: return "Upgrade Required";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

int status_of(const Error& e) {
    switch (e.code()) {
        case ErrorCode::invalid_argument:
        case ErrorCode::invalid_input: return 400;
        case ErrorCode::unsupported: return 503;
        default: return 500;
    }
}

json error_body(int status, const std::string& message) {
    return {{"error", {{"message", message}, {"code", status}}}};
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// FNV-1a: label-set ids are a digest of their labels and templates, so the same set always gets
// the same id, across restarts too.
std::string digest_id(const std::string& key) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : key) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "ls_%016llx", static_cast<unsigned long long>(h));
    return buf;
}

// What a classification needs besides the image: the label set, top_k, threshold.
struct ClassifyParams {
    std::optional<std::string> labelset_id;
    std::vector<std::string> labels;
    std::vector<std::string> templates;
    int top_k = 3;
    float threshold = 0.6f;
};

std::vector<std::string> string_list(const json& value, const char* field) {
    if (value.is_string()) return parse_label_list(value.get<std::string>());
    if (!value.is_array()) throw HttpError{400, std::string("\"") + field + "\" must be a list of strings"};
    std::vector<std::string> out;
    for (const auto& item : value) {
        if (!item.is_string()) throw HttpError{400, std::string("\"") + field + "\" must be a list of strings"};
        out.push_back(item.get<std::string>());
    }
    return out;
}

// Fills params from JSON fields (the same names in multipart forms, as strings).
void read_classify_params(const json& doc, ClassifyParams& p) {
    if (doc.contains("labelset")) {
        if (!doc["labelset"].is_string()) throw HttpError{400, "\"labelset\" must be a string id"};
        p.labelset_id = doc["labelset"].get<std::string>();
    }
    if (doc.contains("labels")) p.labels = string_list(doc["labels"], "labels");
    if (doc.contains("templates")) {
        if (!doc["templates"].is_array()) throw HttpError{400, "\"templates\" must be a list of strings with {}"};
        p.templates = string_list(doc["templates"], "templates");
    }
    if (doc.contains("prefix") || doc.contains("suffix")) {
        if (!p.templates.empty()) throw HttpError{400, "give either \"templates\" or \"prefix\"/\"suffix\", not both"};
        auto text = [&](const char* key) {
            if (!doc.contains(key)) return std::string();
            if (!doc[key].is_string()) throw HttpError{400, std::string("\"") + key + "\" must be a string"};
            return doc[key].get<std::string>();
        };
        p.templates = {text("prefix") + "{}" + text("suffix")};
    }
    if (doc.contains("top_k")) {
        if (!doc["top_k"].is_number_integer() || doc["top_k"].get<int64_t>() < 1 || doc["top_k"].get<int64_t>() > 100000) {
            throw HttpError{400, "\"top_k\" must be an integer from 1"};
        }
        p.top_k = doc["top_k"].get<int>();
    }
    if (doc.contains("threshold")) {
        if (!doc["threshold"].is_number() || doc["threshold"].get<double>() < 0 || doc["threshold"].get<double>() > 1) {
            throw HttpError{400, "\"threshold\" must be a number between 0 and 1"};
        }
        p.threshold = doc["threshold"].get<float>();
    }
}

json scores_json(const Classification& c) {
    json top = json::array();
    for (const auto& s : c.top) {
        top.push_back({{"index", s.index}, {"label", s.label}, {"probability", s.probability}, {"logit", s.logit}, {"cosine", s.cosine}});
    }
    return top;
}

// One WebSocket client of /v1/stream.
struct Stream {
    mg_connection* conn = nullptr;
    std::shared_ptr<const LabelSet> labels;
    std::string labelset_id;
    int top_k = 3;
    float threshold = 0.6f;
    float smoothing = 0;  // weight of the previous probabilities in the running average
    std::vector<float> smoothed;

    std::mutex mutex;
    std::condition_variable wake;
    std::optional<std::vector<uint8_t>> pending;  // the newest frame not yet taken
    uint64_t pending_seq = 0;
    Clock::time_point pending_arrival;
    uint64_t received = 0;
    uint64_t dropped = 0;
    bool stopping = false;
    std::atomic<bool> failed{false};  // a bad frame: the stream is being closed
    std::thread worker;

    Clock::time_point last_result;
    double fps = 0;
};

class Server {
public:
    Server(const Model& model, const ServerOptions& options)
        : model_(model),
          options_(options),
          batcher_(model, BatcherOptions{options.max_batch, options.max_wait, 256}, metrics_) {}

    void run(const std::optional<TlsFiles>& tls);

private:
    // HTTP
    static int on_request(mg_connection* conn, void* self) { return static_cast<Server*>(self)->handle(conn); }
    int handle(mg_connection* conn);
    void send(mg_connection* conn, int status, const std::string& content_type, std::string_view body, bool close = false);
    std::string read_body(mg_connection* conn);
    json route(mg_connection* conn, const std::string& method, const std::string& path, std::string& route_name);
    json models_json() const;
    void check_model(const json& doc) const;
    json embeddings(mg_connection* conn);
    json classify(mg_connection* conn);
    json create_labelset(mg_connection* conn);
    std::pair<std::string, std::shared_ptr<const LabelSet>> labelset(const ClassifyParams& p);
    Image decode(std::span<const uint8_t> bytes, const std::string& name) const;

    // WebSocket
    static int on_ws_connect(const mg_connection* conn, void* self) { return static_cast<Server*>(self)->ws_connect(conn); }
    static void on_ws_ready(mg_connection* conn, void* self) { static_cast<Server*>(self)->ws_ready(conn); }
    static int on_ws_data(mg_connection* conn, int bits, char* data, size_t len, void* self) {
        return static_cast<Server*>(self)->ws_data(conn, bits, data, len);
    }
    static void on_ws_close(const mg_connection* conn, void* self) { static_cast<Server*>(self)->ws_close(conn); }
    int ws_connect(const mg_connection* conn);
    void ws_ready(mg_connection* conn);
    int ws_data(mg_connection* conn, int bits, char* data, size_t len);
    void ws_close(const mg_connection* conn);
    void ws_configure(Stream& s, std::string_view text);
    void ws_loop(Stream& s);
    void ws_send(Stream& s, const json& message);
    void ws_fail(Stream& s, const std::string& message);

    const Model& model_;
    ServerOptions options_;
    Metrics metrics_;
    Batcher batcher_;

    std::mutex labelsets_mutex_;
    std::list<std::string> labelset_order_;  // least recently used first
    std::unordered_map<std::string, std::shared_ptr<const LabelSet>> labelsets_;
    static constexpr size_t max_labelsets = 256;

    std::mutex streams_mutex_;
    int streams_ = 0;
};

void Server::send(mg_connection* conn, int status, const std::string& content_type, std::string_view body, bool close) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\n%s\r\n",
              status, status_text(status), content_type.c_str(), body.size(), close ? "Connection: close\r\n" : "");
    mg_write(conn, body.data(), body.size());
}

std::string Server::read_body(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    if (info->content_length > static_cast<long long>(options_.max_body_bytes)) {
        throw HttpError{413, "request body of " + std::to_string(info->content_length) + " bytes is over the limit of " +
                                 std::to_string(options_.max_body_bytes)};
    }
    std::string body;
    if (info->content_length >= 0) body.reserve(static_cast<size_t>(info->content_length));
    // Read straight into the body: CivetWeb's threads have small stacks (a 64 KiB buffer there
    // overflowed them under AddressSanitizer).
    constexpr size_t kChunk = 65536;
    for (;;) {
        const size_t before = body.size();
        body.resize(before + kChunk);
        const int n = mg_read(conn, body.data() + before, kChunk);
        body.resize(before + static_cast<size_t>(std::max(n, 0)));
        if (n < 0) throw HttpError{400, "the request body could not be read"};
        if (n == 0) break;
        if (body.size() > options_.max_body_bytes) {
            throw HttpError{413, "request body over the limit of " + std::to_string(options_.max_body_bytes) + " bytes"};
        }
    }
    if (info->content_length >= 0 && body.size() != static_cast<size_t>(info->content_length)) {
        throw HttpError{400, "the request body ended early"};
    }
    return body;
}

int Server::handle(mg_connection* conn) {
    const auto start = Clock::now();
    const mg_request_info* info = mg_get_request_info(conn);
    const std::string method = info->request_method ? info->request_method : "";
    const std::string path = info->local_uri ? info->local_uri : "";
    std::string route_name = "other";
    int status = 200;
    bool close = false;
    try {
        // Static files of the web app.
        if (method == "GET" || method == "HEAD") {
            const std::string file = path == "/" ? "/index.html" : path;
            if (const WebAsset* asset = find_web_asset(file)) {
                route_name = "static";
                send(conn, 200, asset->content_type, method == "HEAD" ? std::string_view() : asset->data);
                metrics_.observe_request(route_name, 200, ms_since(start) / 1000);
                return 200;
            }
        }
        json answer = route(conn, method, path, route_name);
        if (answer.is_string()) {  // plain text (metrics)
            send(conn, 200, "text/plain; version=0.0.4; charset=utf-8", answer.get_ref<const std::string&>());
        } else {
            send(conn, 200, "application/json", answer.dump(-1, ' ', false, json::error_handler_t::replace));
        }
    } catch (const HttpError& e) {
        status = e.status;
        close = status == 413;  // the unread body would be taken for the next request
        send(conn, status, "application/json", error_body(status, e.message).dump(-1, ' ', false, json::error_handler_t::replace), close);
    } catch (const json::exception& e) {
        status = 400;
        send(conn, status, "application/json", error_body(status, std::string("malformed JSON: ") + e.what()).dump(-1, ' ', false, json::error_handler_t::replace));
    } catch (const Error& e) {
        status = status_of(e);
        send(conn, status, "application/json", error_body(status, e.what()).dump(-1, ' ', false, json::error_handler_t::replace));
    } catch (const std::bad_alloc&) {
        status = 503;
        send(conn, status, "application/json", error_body(status, "out of memory").dump(), true);
    } catch (const std::exception& e) {
        status = 500;
        send(conn, status, "application/json", error_body(status, e.what()).dump(-1, ' ', false, json::error_handler_t::replace));
    }
    metrics_.observe_request(route_name, status, ms_since(start) / 1000);
    return status;
}

json Server::route(mg_connection* conn, const std::string& method, const std::string& path, std::string& route_name) {
    auto require = [&](const char* m) {
        if (method != m) throw HttpError{405, "use " + std::string(m) + " for " + path};
    };
    if (path == "/healthz") {
        route_name = path;
        require("GET");
        return {{"status", "ok"}};
    }
    if (path == "/v1/models") {
        route_name = path;
        require("GET");
        return models_json();
    }
    if (path == "/v1/presets") {
        route_name = path;
        require("GET");
        json presets = json::object();
        for (const auto& name : label_preset_names()) presets[name] = label_preset(name);
        return presets;
    }
    if (path == "/metrics") {
        route_name = path;
        require("GET");
        return metrics_.text();
    }
    if (path == "/v1/embeddings") {
        route_name = path;
        require("POST");
        return embeddings(conn);
    }
    if (path == "/v1/classify") {
        route_name = path;
        require("POST");
        return classify(conn);
    }
    if (path == "/v1/labelsets") {
        route_name = path;
        require("POST");
        return create_labelset(conn);
    }
    if (path == "/v1/stream") {
        route_name = path;
        throw HttpError{426, "/v1/stream is a WebSocket endpoint"};
    }
    throw HttpError{404, "no such endpoint: " + path};
}

json Server::models_json() const {
    const ModelInfo& info = model_.info();
    return {{"object", "list"},
            {"data",
             json::array({{{"id", options_.model_id},
                           {"object", "model"},
                           {"name", info.name},
                           {"architecture", info.architecture},
                           {"dim", info.embed_dim},
                           {"image_size", info.image_size},
                           {"context_length", info.context_length},
                           {"precision", info.precision},
                           {"backend", info.backend},
                           {"threads", info.threads},
                           {"weights", info.weights},
                           {"logit_scale", info.logit_scale}}})}};
}

void Server::check_model(const json& doc) const {
    if (!doc.contains("model") || doc["model"].is_null()) return;
    if (!doc["model"].is_string()) throw HttpError{400, "\"model\" must be a string"};
    const std::string name = doc["model"].get<std::string>();
    const ModelInfo& info = model_.info();
    if (name.empty() || name == options_.model_id || lower(name) == lower(info.architecture) || lower(name) == lower(info.name)) return;
    throw HttpError{404, "unknown model \"" + name + "\"; this server has \"" + options_.model_id + "\" (GET /v1/models)"};
}

Image Server::decode(std::span<const uint8_t> bytes, const std::string& name) const {
    DecodeOptions decode;
    decode.max_pixels = options_.max_pixels;
    return decode_image_memory(bytes, name, decode);
}

// A multipart form as JSON: plain fields become strings (labels, templates and top_k keep their
// JSON meaning when they parse as JSON), files become their bytes.
struct Form {
    json fields = json::object();
    std::vector<std::pair<std::string, std::string_view>> files;  // name, bytes
};

Form read_form(const std::string& body, const char* content_type) {
    Form form;
    for (const FormPart& part : parse_multipart(body, multipart_boundary(content_type ? content_type : ""))) {
        if (!part.filename.empty() || part.name == "file" || part.name == "image") {
            form.files.emplace_back(part.filename.empty() ? part.name : part.filename, part.data);
            continue;
        }
        const std::string value(part.data);
        if (part.name == "templates" || part.name == "top_k" || part.name == "threshold" || part.name == "normalize" ||
            (part.name == "labels" && !value.empty() && value.front() == '[')) {
            json parsed = json::parse(value, nullptr, false);
            if (parsed.is_discarded()) throw HttpError{400, "form field \"" + part.name + "\" is not valid JSON"};
            form.fields[part.name] = parsed;
        } else {
            form.fields[part.name] = value;
        }
    }
    return form;
}

bool is_multipart(const char* content_type) {
    return content_type && lower(std::string(content_type)).rfind("multipart/", 0) == 0;
}

json parse_json_object(const std::string& body) {
    json doc = json::parse(body);
    if (!doc.is_object()) throw HttpError{400, "the request body must be a JSON object"};
    return doc;
}

json Server::embeddings(mg_connection* conn) {
    const std::string body = read_body(conn);
    const char* content_type = mg_get_header(conn, "Content-Type");
    std::vector<std::string> texts;
    std::vector<Image> images;
    bool normalize = false;
    if (is_multipart(content_type)) {
        Form form = read_form(body, content_type);
        check_model(form.fields);
        if (form.files.empty()) throw HttpError{400, "multipart embeddings need image files"};
        if (form.files.size() > 64) throw HttpError{400, "at most 64 images per request"};
        for (const auto& [name, bytes] : form.files) images.push_back(decode({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, name));
        if (form.fields.contains("normalize")) normalize = form.fields["normalize"] == true;
    } else {
        json doc = parse_json_object(body);
        check_model(doc);
        if (!doc.contains("input")) throw HttpError{400, "\"input\" is required: a string or a list of strings"};
        const std::vector<std::string> inputs = doc["input"].is_string() ? std::vector<std::string>{doc["input"].get<std::string>()}
                                                                         : string_list(doc["input"], "input");
        if (inputs.empty()) throw HttpError{400, "\"input\" is empty"};
        if (inputs.size() > 256) throw HttpError{400, "at most 256 inputs per request"};
        std::string modality;
        if (doc.contains("modality")) {
            if (!doc["modality"].is_string()) throw HttpError{400, "\"modality\" must be \"text\" or \"image\""};
            modality = doc["modality"].get<std::string>();
        } else {
            modality = std::all_of(inputs.begin(), inputs.end(), [](const std::string& s) { return is_data_uri(s); }) ? "image" : "text";
        }
        if (doc.contains("normalize")) {
            if (!doc["normalize"].is_boolean()) throw HttpError{400, "\"normalize\" must be true or false"};
            normalize = doc["normalize"].get<bool>();
        }
        if (modality == "text") {
            texts = inputs;
        } else if (modality == "image") {
            for (size_t i = 0; i < inputs.size(); ++i) {
                const std::vector<uint8_t> bytes = decode_data_uri(inputs[i]);
                images.push_back(decode(bytes, "input[" + std::to_string(i) + "]"));
            }
        } else {
            throw HttpError{400, "\"modality\" must be \"text\" or \"image\""};
        }
    }

    Embeddings result;
    int64_t tokens = 0;
    if (!texts.empty()) {
        batcher_.run([&] {
            result = model_.embed_texts(texts);
            for (int32_t id : model_.tokenize(texts)) tokens += id != 0;
        }).get();
    } else {
        std::vector<std::future<std::vector<float>>> futures;
        for (auto& image : images) futures.push_back(batcher_.embed_image(std::move(image)));
        result.rows = static_cast<int>(futures.size());
        result.dim = model_.embed_dim();
        for (auto& f : futures) {
            const std::vector<float> row = f.get();
            result.values.insert(result.values.end(), row.begin(), row.end());
        }
    }
    if (normalize) normalize_rows(result);
    json data = json::array();
    for (int r = 0; r < result.rows; ++r) {
        const auto row = result.row(r);
        data.push_back({{"object", "embedding"}, {"index", r}, {"embedding", std::vector<float>(row.begin(), row.end())}});
    }
    return {{"object", "list"}, {"data", data}, {"model", options_.model_id}, {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
}

std::pair<std::string, std::shared_ptr<const LabelSet>> Server::labelset(const ClassifyParams& p) {
    if (p.labelset_id) {
        if (!p.labels.empty() || !p.templates.empty()) throw HttpError{400, "give either \"labelset\" or \"labels\", not both"};
        std::lock_guard lock(labelsets_mutex_);
        auto it = labelsets_.find(*p.labelset_id);
        if (it == labelsets_.end()) throw HttpError{404, "unknown label set \"" + *p.labelset_id + "\" (create it with POST /v1/labelsets)"};
        labelset_order_.remove(*p.labelset_id);
        labelset_order_.push_back(*p.labelset_id);
        return {it->first, it->second};
    }
    if (p.labels.empty()) throw HttpError{400, "\"labels\" (a list of class names) or \"labelset\" (an id) is required"};
    if (p.labels.size() > 1000) throw HttpError{400, "at most 1000 labels"};
    const std::vector<std::string> templates = p.templates.empty() ? default_templates() : p.templates;
    if (templates.size() > 64) throw HttpError{400, "at most 64 templates"};
    validate_templates(templates);
    std::string key;
    for (const auto& l : p.labels) {
        if (l.empty() || l.size() > 300) throw HttpError{400, "labels must be 1 to 300 bytes long"};
        key += l + '\x1f';
    }
    key += '\x1e';
    for (const auto& t : templates) {
        if (t.size() > 300) throw HttpError{400, "templates must be at most 300 bytes long"};
        key += t + '\x1f';
    }
    const std::string id = digest_id(key);
    {
        std::lock_guard lock(labelsets_mutex_);
        if (auto it = labelsets_.find(id); it != labelsets_.end()) {
            labelset_order_.remove(id);
            labelset_order_.push_back(id);
            return {id, it->second};
        }
    }
    // Computed on the model worker, like the images, so text encoding never competes for cores.
    std::shared_ptr<const LabelSet> computed;
    LabelSetOptions set_options = options_.label_options;
    set_options.templates = templates;
    batcher_.run([&] { computed = std::make_shared<const LabelSet>(model_.labels(p.labels, set_options)); }).get();
    std::lock_guard lock(labelsets_mutex_);
    if (labelsets_.emplace(id, computed).second) {
        labelset_order_.push_back(id);
        if (labelset_order_.size() > max_labelsets) {
            labelsets_.erase(labelset_order_.front());
            labelset_order_.pop_front();
        }
    }
    return {id, computed};
}

json Server::create_labelset(mg_connection* conn) {
    const json doc = parse_json_object(read_body(conn));
    check_model(doc);
    ClassifyParams p;
    read_classify_params(doc, p);
    if (p.labelset_id) throw HttpError{400, "\"labelset\" is not an input here; give \"labels\""};
    const auto [id, set] = labelset(p);
    return {{"id", id}, {"labels", set->labels}, {"templates", set->templates}, {"from_cache", set->from_cache}};
}

json Server::classify(mg_connection* conn) {
    const std::string body = read_body(conn);
    const char* content_type = mg_get_header(conn, "Content-Type");
    ClassifyParams p;
    std::vector<uint8_t> owned;
    std::span<const uint8_t> bytes;
    std::string name = "image";
    if (is_multipart(content_type)) {
        Form form = read_form(body, content_type);
        check_model(form.fields);
        read_classify_params(form.fields, p);
        if (form.files.size() != 1) throw HttpError{400, "send exactly one image file (form field \"image\")"};
        name = form.files[0].first;
        bytes = {reinterpret_cast<const uint8_t*>(form.files[0].second.data()), form.files[0].second.size()};
    } else {
        const json doc = parse_json_object(body);
        check_model(doc);
        read_classify_params(doc, p);
        if (!doc.contains("image") || !doc["image"].is_string()) throw HttpError{400, "\"image\" (a data URI) is required"};
        owned = decode_data_uri(doc["image"].get<std::string>());
        bytes = owned;
    }
    const auto [id, set] = labelset(p);
    Image image = decode(bytes, name);
    const auto start = Clock::now();
    const std::vector<float> embedding = batcher_.embed_image(std::move(image)).get();
    const Classification c = model_.classify(embedding, *set, p.top_k, p.threshold);
    return {{"label", c.label},
            {"confidence", c.confidence},
            {"unknown", c.unknown},
            {"top_k", scores_json(c)},
            {"inference_ms", ms_since(start)},
            {"labelset", id},
            {"model", options_.model_id}};
}

// ---- WebSocket /v1/stream -------------------------------------------------------------------

int Server::ws_connect(const mg_connection* conn) {
    std::lock_guard lock(streams_mutex_);
    if (streams_ >= options_.max_streams) {
        const std::string body = error_body(503, "too many streams (at most " + std::to_string(options_.max_streams) + ")").dump();
        auto* c = const_cast<mg_connection*>(conn);
        mg_printf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                  body.size());
        mg_write(c, body.data(), body.size());
        metrics_.observe_request("/v1/stream", 503, 0);
        return 1;
    }
    ++streams_;
    metrics_.set_streams(streams_);
    metrics_.observe_request("/v1/stream", 101, 0);
    auto* stream = new Stream;
    stream->conn = const_cast<mg_connection*>(conn);
    mg_set_user_connection_data(conn, stream);
    return 0;
}

void Server::ws_ready(mg_connection* conn) {
    auto* s = static_cast<Stream*>(mg_get_user_connection_data(conn));
    s->worker = std::thread([this, s] { ws_loop(*s); });
    const ModelInfo& info = model_.info();
    ws_send(*s, {{"type", "ready"}, {"model", options_.model_id}, {"architecture", info.architecture}, {"precision", info.precision}});
}

void Server::ws_send(Stream& s, const json& message) {
    const std::string text = message.dump(-1, ' ', false, json::error_handler_t::replace);
    mg_lock_connection(s.conn);
    mg_websocket_write(s.conn, MG_WEBSOCKET_OPCODE_TEXT, text.data(), text.size());
    mg_unlock_connection(s.conn);
}

void Server::ws_fail(Stream& s, const std::string& message) {
    s.failed = true;
    ws_send(s, {{"type", "error"}, {"message", message}});
    // 1008: policy violation (a message the server cannot accept).
    const char close_payload[] = {'\x03', '\xf0'};
    mg_lock_connection(s.conn);
    mg_websocket_write(s.conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, close_payload, sizeof close_payload);
    mg_unlock_connection(s.conn);
}

void Server::ws_configure(Stream& s, std::string_view text) {
    const json doc = json::parse(text);
    if (!doc.is_object()) throw HttpError{400, "the configuration must be a JSON object"};
    check_model(doc);
    ClassifyParams p;
    read_classify_params(doc, p);
    float smoothing = 0;
    if (doc.contains("smoothing")) {
        if (!doc["smoothing"].is_number() || doc["smoothing"].get<double>() < 0 || doc["smoothing"].get<double>() >= 1) {
            throw HttpError{400, "\"smoothing\" must be a number in [0, 1)"};
        }
        smoothing = doc["smoothing"].get<float>();
    }
    auto [id, set] = labelset(p);
    std::lock_guard lock(s.mutex);
    s.labels = set;
    s.labelset_id = id;
    s.top_k = p.top_k;
    s.threshold = p.threshold;
    s.smoothing = smoothing;
    s.smoothed.clear();
}

int Server::ws_data(mg_connection* conn, int bits, char* data, size_t len) {
    auto* s = static_cast<Stream*>(mg_get_user_connection_data(conn));
    if (s->failed) return 0;
    const int opcode = bits & 0x0f;
    try {
        if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) return 0;
        if (opcode == MG_WEBSOCKET_OPCODE_PING || opcode == MG_WEBSOCKET_OPCODE_PONG) return 1;
        if (opcode == MG_WEBSOCKET_OPCODE_TEXT) {
            ws_configure(*s, std::string_view(data, len));
            std::lock_guard lock(s->mutex);
            ws_send(*s, {{"type", "config"}, {"labelset", s->labelset_id}, {"labels", s->labels->labels}, {"templates", s->labels->templates}});
            return 1;
        }
        if (opcode == MG_WEBSOCKET_OPCODE_BINARY) {
            if (len > options_.max_body_bytes) throw HttpError{413, "frame over the size limit"};
            std::lock_guard lock(s->mutex);
            if (!s->labels) throw HttpError{400, "send the JSON configuration (labels) before the first frame"};
            ++s->received;
            if (s->pending) {
                ++s->dropped;
                metrics_.add_dropped_frames(1);
            }
            s->pending.emplace(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + len);
            s->pending_seq = s->received;
            s->pending_arrival = Clock::now();
            s->wake.notify_one();
            return 1;
        }
        throw HttpError{400, "unexpected WebSocket message (fragmented or unknown opcode)"};
    } catch (const HttpError& e) {
        ws_fail(*s, e.message);
    } catch (const json::exception& e) {
        ws_fail(*s, std::string("malformed JSON configuration: ") + e.what());
    } catch (const Error& e) {
        ws_fail(*s, e.what());
    } catch (const std::exception& e) {
        ws_fail(*s, e.what());
    }
    return 0;
}

void Server::ws_loop(Stream& s) {
    for (;;) {
        std::vector<uint8_t> frame;
        uint64_t seq = 0;
        Clock::time_point arrival;
        std::shared_ptr<const LabelSet> labels;
        {
            std::unique_lock lock(s.mutex);
            s.wake.wait(lock, [&] { return s.stopping || s.pending.has_value(); });
            if (s.stopping) return;
            frame = std::move(*s.pending);
            s.pending.reset();
            seq = s.pending_seq;
            arrival = s.pending_arrival;
            labels = s.labels;
        }
        try {
            Image image = decode(frame, "frame " + std::to_string(seq));
            const auto start = Clock::now();
            const std::vector<float> embedding = batcher_.embed_image(std::move(image)).get();
            const double inference_ms = ms_since(start);
            const auto classify_all = [&] { return model_.classify(embedding, *labels, static_cast<int>(labels->labels.size()), 0); };
            Classification all = classify_all();
            std::unique_lock lock(s.mutex);
            // Reconfigured meanwhile: the frame is answered with the new labels (its embedding
            // does not depend on them), since a client keeping one frame in flight waits for it.
            while (labels != s.labels) {
                labels = s.labels;
                lock.unlock();
                all = classify_all();
                lock.lock();
            }
            const int n = static_cast<int>(labels->labels.size());
            // Smoothing: a running average of every class's probability, then the usual ranking.
            std::vector<float> probability(n, 0.f);
            for (const Score& score : all.top) probability[score.index] = score.probability;
            if (s.smoothing > 0 && static_cast<int>(s.smoothed.size()) == n) {
                for (int i = 0; i < n; ++i) probability[i] = s.smoothing * s.smoothed[i] + (1 - s.smoothing) * probability[i];
            }
            s.smoothed = probability;
            std::vector<Score> ranked = all.top;
            for (Score& score : ranked) score.probability = probability[score.index];
            std::stable_sort(ranked.begin(), ranked.end(), [](const Score& a, const Score& b) { return a.probability > b.probability; });
            ranked.resize(std::min<size_t>(ranked.size(), static_cast<size_t>(s.top_k)));
            Classification c;
            c.top = ranked;
            c.confidence = ranked.empty() ? 0.f : ranked[0].probability;
            c.unknown = c.confidence < s.threshold;
            c.label = c.unknown ? "unknown" : ranked[0].label;
            const auto now = Clock::now();
            if (s.last_result.time_since_epoch().count() != 0) {
                const double interval = std::chrono::duration<double>(now - s.last_result).count();
                const double instant = interval > 0 ? 1.0 / interval : 0;
                s.fps = s.fps == 0 ? instant : 0.9 * s.fps + 0.1 * instant;
            }
            s.last_result = now;
            const json message = {{"type", "result"},       {"seq", seq},
                                  {"label", c.label},       {"confidence", c.confidence},
                                  {"unknown", c.unknown},   {"top_k", scores_json(c)},
                                  {"inference_ms", inference_ms}, {"latency_ms", ms_since(arrival)},
                                  {"fps", s.fps},           {"dropped", s.dropped}};
            lock.unlock();
            metrics_.add_stream_frames(1);
            ws_send(s, message);
        } catch (const Error& e) {
            ws_fail(s, e.what());
            return;
        } catch (const std::exception& e) {
            ws_fail(s, e.what());
            return;
        }
    }
}

void Server::ws_close(const mg_connection* conn) {
    auto* s = static_cast<Stream*>(mg_get_user_connection_data(conn));
    if (!s) return;
    {
        std::lock_guard lock(s->mutex);
        s->stopping = true;
    }
    s->wake.notify_all();
    if (s->worker.joinable()) s->worker.join();
    delete s;
    std::lock_guard lock(streams_mutex_);
    --streams_;
    metrics_.set_streams(streams_);
}

int log_civetweb(const mg_connection*, const char* message) {
    log_message(LogLevel::info, std::string("http: ") + message);
    return 1;
}

void Server::run(const std::optional<TlsFiles>& tls) {
    // The signals are waited for below; the server's threads must not take them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    // A client that goes away mid-answer must not end the process.
    signal(SIGPIPE, SIG_IGN);
    // Every connection thread decodes images; glibc would give each its own heap arena (up to
    // eight per core), whose freed pages stay mapped: resident memory grew 15% over a 20 s load
    // test with arenas unbounded and under 5% with two (bench/serve_load.py, docs/server.md).
    // An explicit MALLOC_ARENA_MAX in the environment wins.
    if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);

    if (tls) load_civetweb_openssl3_compat();
    mg_init_library(tls ? MG_FEATURES_TLS | MG_FEATURES_WEBSOCKET : MG_FEATURES_WEBSOCKET);

    const std::string host = options_.host.find(':') != std::string::npos ? "[" + options_.host + "]" : options_.host;
    const std::string ports = host + ":" + std::to_string(options_.port) + (tls ? "s" : "");
    // Each stream holds a connection thread for its lifetime; the HTTP requests get their own.
    const std::string threads = std::to_string(options_.http_threads + options_.max_streams);
    const std::string timeout = std::to_string(options_.request_timeout_ms);
    std::vector<const char*> config = {"listening_ports", ports.c_str(),
                                       "num_threads", threads.c_str(),
                                       "request_timeout_ms", timeout.c_str(),
                                       "websocket_timeout_ms", timeout.c_str(),
                                       "enable_keep_alive", "yes",
                                       "keep_alive_timeout_ms", "5000",
                                       // Replies go out at once: with Nagle's algorithm a stream
                                       // answer written in two parts waited for the client's
                                       // delayed ACK, about 40 ms a frame (docs/server.md).
                                       "tcp_nodelay", "1"};
    if (tls) {
        config.push_back("ssl_certificate");
        config.push_back(tls->pem.c_str());
    }
    config.push_back(nullptr);

    mg_callbacks callbacks{};
    callbacks.log_message = log_civetweb;
    mg_context* ctx = mg_start(&callbacks, this, config.data());
    if (!ctx) {
        mg_exit_library();
        throw Error(ErrorCode::io, "cannot serve on " + ports + " (address in use, not local, or the certificate was refused)");
    }
    mg_set_request_handler(ctx, "/", on_request, this);
    mg_set_websocket_handler(ctx, "/v1/stream", on_ws_connect, on_ws_ready, on_ws_data, on_ws_close, this);

    int port = options_.port;
    mg_server_port bound[4];
    if (mg_get_server_ports(ctx, 4, bound) > 0) port = bound[0].port;
    const ModelInfo& info = model_.info();
    std::printf("mclip serve: %s (%s, %s) listening on %s://%s:%d/\n", options_.model_id.c_str(), info.architecture.c_str(),
                info.precision.c_str(), tls ? "https" : "http", host.c_str(), port);
    if (tls && !tls->fingerprint.empty()) std::printf("mclip serve: certificate SHA-256 %s\n", tls->fingerprint.c_str());
    std::fflush(stdout);

    int received = 0;
    sigwait(&signals, &received);
    log_message(LogLevel::info, "stopping");
    mg_stop(ctx);
    mg_exit_library();
}

}  // namespace

void serve(const std::function<Model()>& load_model, const ServerOptions& options) {
    // The certificate is checked before the model loads (or downloads), so a wrong file fails fast.
    std::optional<TlsFiles> tls;
    if (options.tls_self_signed || !options.cert_file.empty()) {
        tls.emplace(options.tls_self_signed ? make_self_signed(options.host) : combine_pem(options.cert_file, options.key_file));
    }
    const Model model = load_model();
    Server server(model, options);
    server.run(tls);
}

}  // namespace mclip::server
