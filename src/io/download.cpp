#include "io/download.h"

// Calls go through pointers (curl_functions() below), which libcurl's type-checking macros cannot
// wrap; every value passed to curl_easy_setopt has the type its option documents (long, char*,
// the callbacks' own signatures).
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "common/shared_library.h"
#include "mclip/progress.h"
#include "io/sha256.h"
#include "mclip/version.h"

namespace mclip {
namespace {

const char* environment_value(const char* name) {
    const char* value = std::getenv(name);
    return value && *value ? value : nullptr;
}

std::string without_trailing_slashes(std::string text) {
    while (!text.empty() && text.back() == '/') text.pop_back();
    return text;
}

// RFC 3986 unreserved characters pass; everything else becomes %XX ('/' too unless kept).
std::string percent_encode(std::string_view text, bool keep_slash) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string host_of(std::string_view url) {
    auto start = url.find("://");
    start = start == std::string_view::npos ? 0 : start + 3;
    const auto end = url.find_first_of("/?#", start);
    return std::string(url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

std::string lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return std::string(text.substr(first, last - first + 1));
}

// Each component of a repository or file path must name something inside the cache folder.
void check_path_components(std::string_view text, const char* what) {
    size_t start = 0;
    while (true) {
        const auto end = text.find('/', start);
        const auto part = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (part.empty() || part == "." || part == "..") {
            throw Error(ErrorCode::invalid_argument, std::string("invalid ") + what + " '" + std::string(text) + "'");
        }
        if (end == std::string_view::npos) return;
        start = end + 1;
    }
}

// An ETag is a content digest only when it is 64 hex digits (Hugging Face's LFS files); Git blob
// ids (40 digits) and CDN tags are not SHA-256 and are ignored.
std::string sha256_from_etag(std::string_view etag) {
    std::string value = trim(etag);
    if (value.rfind("W/", 0) == 0) value = value.substr(2);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value.size() != 64 || !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isxdigit(c); })) {
        return {};
    }
    return lowercase(value);
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
    const std::string value = trim(text);
    if (value.empty() || !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return std::nullopt;
    }
    return std::stoull(value);
}

// "bytes FIRST-LAST/TOTAL" or "bytes */TOTAL" (TOTAL may be '*').
struct ContentRange {
    std::optional<uint64_t> first;
    std::optional<uint64_t> total;
};

ContentRange parse_content_range(std::string_view value) {
    ContentRange range;
    std::string text = trim(value);
    if (text.rfind("bytes ", 0) != 0) return range;
    text = text.substr(6);
    const auto slash = text.find('/');
    if (slash == std::string::npos) return range;
    range.total = parse_unsigned(std::string_view(text).substr(slash + 1));
    const auto dash = text.find('-');
    if (dash != std::string::npos && dash < slash) range.first = parse_unsigned(std::string_view(text).substr(0, dash));
    return range;
}

#define MCLIP_CURL_FUNCTIONS(X) \
    X(curl_easy_cleanup)        \
    X(curl_easy_getinfo)        \
    X(curl_easy_init)           \
    X(curl_easy_perform)        \
    X(curl_easy_setopt)         \
    X(curl_easy_strerror)       \
    X(curl_global_init)

struct CurlFunctions {
#define MCLIP_CURL_POINTER(name) decltype(&::name) name;
    MCLIP_CURL_FUNCTIONS(MCLIP_CURL_POINTER)
#undef MCLIP_CURL_POINTER
};

// libcurl, opened and initialized by the first download (thread-safe; a failure is tried again).
struct LoadedCurl {
    SharedLibrary library{"libcurl.so.4", "downloading models"};
    CurlFunctions functions;

    LoadedCurl() {
#define MCLIP_CURL_RESOLVE(name) library.resolve(functions.name, #name);
        MCLIP_CURL_FUNCTIONS(MCLIP_CURL_RESOLVE)
#undef MCLIP_CURL_RESOLVE
        if (functions.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            throw Error(ErrorCode::internal, "libcurl could not be initialized");
        }
    }
};

const CurlFunctions& curl_functions() {
    static const LoadedCurl loaded;
    return loaded.functions;
}

// An exclusive flock(2) on "<file>.lock", held while the file is fetched. The lock file stays:
// removing it would let a waiting process and a newcomer lock two different files.
class FileLock {
public:
    explicit FileLock(const std::filesystem::path& path) {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw_system_error(path.string(), "cannot create lock file");
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
        if (errno != EWOULDBLOCK) fail(path);
        log_warning(path.parent_path().string() + ": another mclip process is fetching " + path.stem().string() +
                    "; waiting for it to finish");
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno != EINTR) fail(path);
        }
    }
    ~FileLock() {
        ::flock(fd_, LOCK_UN);
        ::close(fd_);
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    [[noreturn]] void fail(const std::filesystem::path& path) {
        const int saved = errno;
        ::close(fd_);
        errno = saved;
        throw_system_error(path.string(), "cannot lock");
    }
    int fd_ = -1;
};

struct HttpResponse {
    long status = 0;
    std::map<std::string, std::string> headers;  // lowercase names
};

std::string header_value(const HttpResponse& response, const std::string& name) {
    const auto it = response.headers.find(name);
    return it == response.headers.end() ? std::string() : it->second;
}

// The digest the server announces: X-Linked-Etag (set on Hugging Face's answer for LFS files,
// before its redirect to the CDN), else the first ETag that is a SHA-256.
std::pair<std::string, std::string> announced_sha256(const std::vector<HttpResponse>& responses) {
    for (const char* name : {"x-linked-etag", "etag"}) {
        for (const auto& response : responses) {
            const std::string digest = sha256_from_etag(header_value(response, name));
            if (!digest.empty()) return {digest, name == std::string("etag") ? "ETag header" : "X-Linked-Etag header"};
        }
    }
    return {};
}

std::optional<uint64_t> announced_size(const std::vector<HttpResponse>& responses) {
    for (const auto& response : responses) {
        if (auto size = parse_unsigned(header_value(response, "x-linked-size"))) return size;
    }
    return std::nullopt;
}

// Why a pinned file is refused: the server announces another digest for it than the one mclip
// pins. Empty when nothing conflicts. The pin wins because it names the file mclip was written
// for; a server (or a mirror, or a changed repository) offering other bytes is not trusted.
std::string announced_digest_conflict(const HubFile& file, const std::vector<HttpResponse>& responses) {
    if (file.sha256.empty()) return {};
    const std::string pinned = lowercase(file.sha256);
    const auto [announced, source] = announced_sha256(responses);
    if (announced.empty() || announced == pinned) return {};
    return "refused " + file.repo + "/" + file.path + ": mclip pins SHA-256 " + pinned + ", but the server announces " +
           announced + " (" + source + "); the repository has changed or the endpoint serves another file, so nothing was saved";
}

// State shared with libcurl's callbacks during one request.
struct Transfer {
    std::FILE* file = nullptr;
    std::filesystem::path part_path;
    uint64_t resume_from = 0;  // bytes of the .part file this request continues
    uint64_t received = 0;
    std::unique_ptr<Sha256> hash;  // over the whole file, the kept part included
    ProgressBar* progress = nullptr;
    const DownloadProgressCallback* on_progress = nullptr;  // the caller's, when it gave one
    std::vector<HttpResponse> responses;  // one per hop: redirects, then the final answer
    bool body_started = false;
    std::string error_body;  // start of the body of an error response
    std::string failure;     // set when a callback stopped the transfer
    bool failure_is_transient = false;
    const HubFile* hub_file = nullptr;
    std::string refusal;  // set when the answer announces another digest than the pinned one
    uint64_t total = 0;   // the whole file's size, when the answer says (0 otherwise)

    void report(uint64_t done) {
        progress->set(done);
        if (on_progress && *on_progress) (*on_progress)({hub_file->path, done, total});
    }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    const std::string_view line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) {
        HttpResponse response;
        const auto space = line.find(' ');
        if (space != std::string_view::npos) response.status = std::atol(std::string(line.substr(space + 1, 3)).c_str());
        transfer.responses.push_back(std::move(response));
    } else if (const auto colon = line.find(':'); colon != std::string_view::npos && !transfer.responses.empty()) {
        transfer.responses.back().headers[lowercase(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    } else if (trim(line).empty() && !transfer.responses.empty()) {
        // The end of one answer's headers, every answer's (redirect, data, or 416 for a part
        // already whole). The hub announces X-Linked-Etag on its redirect, so a file that is not
        // the pinned one is refused before the CDN is asked for any of it.
        transfer.refusal = announced_digest_conflict(*transfer.hub_file, transfer.responses);
        if (!transfer.refusal.empty()) return 0;
    }
    return size * count;
}

bool is_success(long status) { return status == 200 || status == 206; }

// Decides, at the first byte of the final response's body, where the data belongs.
bool start_body(Transfer& transfer) {
    const HttpResponse& response = transfer.responses.back();
    if (!is_success(response.status)) return true;
    uint64_t total = 0;
    if (response.status == 206) {
        const ContentRange range = parse_content_range(header_value(response, "content-range"));
        if (range.first != transfer.resume_from) {
            transfer.failure = "the server resumed at another byte than the " + std::to_string(transfer.resume_from) +
                               " already received; starting over";
            transfer.failure_is_transient = true;
            return false;
        }
        total = range.total.value_or(0);
    } else {
        if (transfer.resume_from > 0) {
            // The server ignored the Range header and sends the whole file: start the part over.
            std::fflush(transfer.file);
            if (::ftruncate(::fileno(transfer.file), 0) != 0) {
                transfer.failure = transfer.part_path.string() + ": cannot truncate: " + std::strerror(errno);
                return false;
            }
            transfer.resume_from = 0;
            transfer.hash = std::make_unique<Sha256>();
        }
        total = parse_unsigned(header_value(response, "content-length")).value_or(0);
    }
    transfer.total = total;
    transfer.progress->set_total(total);
    transfer.report(transfer.resume_from);
    return true;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    if (transfer.responses.empty()) return 0;
    if (!transfer.body_started) {
        if (!start_body(transfer)) return 0;
        transfer.body_started = true;
    }
    if (!is_success(transfer.responses.back().status)) {
        constexpr size_t kKept = 2048;
        if (transfer.error_body.size() < kKept) transfer.error_body.append(data, std::min(bytes, kKept - transfer.error_body.size()));
        return bytes;
    }
    if (std::fwrite(data, 1, bytes, transfer.file) != bytes) {
        transfer.failure = transfer.part_path.string() + ": cannot write: " + std::strerror(errno);
        return 0;
    }
    transfer.hash->update(data, bytes);
    transfer.received += bytes;
    transfer.report(transfer.resume_from + transfer.received);
    return bytes;
}

void hash_existing_part(const std::filesystem::path& path, uint64_t size, Sha256& hash) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buffer(1 << 20);
    uint64_t left = size;
    while (left > 0 && in) {
        in.read(buffer.data(), static_cast<std::streamsize>(std::min<uint64_t>(left, buffer.size())));
        const auto got = static_cast<uint64_t>(in.gcount());
        hash.update(buffer.data(), got);
        left -= got;
    }
    if (left != 0) throw_system_error(path.string(), "cannot read");
}

std::string describe_http_status(long status, const HttpResponse& response, const std::string& body) {
    std::string text = "HTTP " + std::to_string(status);
    switch (status) {
        case 401: text += " Unauthorized: the repository needs a token (set HF_TOKEN) or the token is not valid"; break;
        case 403: text += " Forbidden: access denied (a gated repository needs its terms accepted on the website and HF_TOKEN set)"; break;
        case 404: text += " Not Found: no such repository, revision or file"; break;
        case 429: text += " Too Many Requests"; break;
        default:
            if (status >= 500) text += " (server error)";
            break;
    }
    // Hugging Face explains refusals in X-Error-Message; other servers in the body.
    std::string detail = header_value(response, "x-error-message");
    if (detail.empty() && !body.empty()) {
        const bool printable = std::all_of(body.begin(), body.end(), [](unsigned char c) { return c >= 0x20 || c == '\n' || c == '\r' || c == '\t'; });
        if (printable) detail = trim(body.substr(0, body.find('\n')).substr(0, 200));
    }
    if (!detail.empty()) text += " (server says: " + detail + ")";
    return text;
}

std::string describe_curl_error(CURLcode code, const char* detail, const std::string& url, bool connected) {
    const std::string message = *detail ? detail : curl_functions().curl_easy_strerror(code);
    switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
            return "DNS lookup of '" + host_of(url) + "' failed (offline, or no such host): " + message;
        case CURLE_COULDNT_RESOLVE_PROXY: return "DNS lookup of the proxy failed: " + message;
        case CURLE_COULDNT_CONNECT: return "could not connect to " + host_of(url) + ": " + message;
        case CURLE_OPERATION_TIMEDOUT:
            return (connected ? "transfer stalled: " : "timed out connecting to " + host_of(url) + ": ") + message;
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING: return "connection lost: " + message;
        case CURLE_TOO_MANY_REDIRECTS: return "too many redirects: " + message;
        default: return message;
    }
}

// Failures worth another try: the connection was made and then broke, or the server was busy.
// Failing to resolve or to reach the host is answered at once (offline answers stay quick).
bool is_transient(CURLcode code, bool connected) {
    switch (code) {
        case CURLE_OPERATION_TIMEDOUT: return connected;
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR: return true;
        default: return false;
    }
}

bool is_transient_status(long status) { return status == 408 || status == 429 || status >= 500; }

struct Attempt {
    bool complete = false;
    bool transient = false;
    bool refused = false;  // the server offers another file than the pinned one
    std::string reason;  // why it failed
    uint64_t size = 0;
    std::string digest;
    std::vector<HttpResponse> responses;
};

struct CurlHandle {
    CURL* handle = curl_functions().curl_easy_init();
    ~CurlHandle() { curl_functions().curl_easy_cleanup(handle); }
};

// One request for the rest of the file, appending to the .part file.
Attempt request_once(const HubFile& file, const std::string& url, const std::filesystem::path& part_path,
                     const HubOptions& options, const std::string& label) {
    Transfer transfer;
    transfer.hub_file = &file;
    transfer.part_path = part_path;
    std::error_code error;
    transfer.resume_from = std::filesystem::exists(part_path, error) ? std::filesystem::file_size(part_path, error) : 0;
    if (error) transfer.resume_from = 0;
    transfer.hash = std::make_unique<Sha256>();
    if (transfer.resume_from > 0) hash_existing_part(part_path, transfer.resume_from, *transfer.hash);
    transfer.file = std::fopen(part_path.c_str(), "ab");
    if (!transfer.file) throw_system_error(part_path.string(), "cannot open for writing");
    ProgressBar progress(label, 0, true);
    transfer.progress = &progress;
    transfer.on_progress = &options.on_progress;

    const CurlFunctions& libcurl = curl_functions();
    CurlHandle curl;
    if (!curl.handle) {
        std::fclose(transfer.file);
        throw Error(ErrorCode::internal, "libcurl could not create a transfer");
    }
    char error_buffer[CURL_ERROR_SIZE] = {};
    const std::string user_agent = std::string("mclip/") + MCLIP_VERSION_STRING;
    const std::string range = std::to_string(transfer.resume_from) + "-";
    CURL* h = curl.handle;
    libcurl.curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    libcurl.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    libcurl.curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    libcurl.curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    libcurl.curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    libcurl.curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    libcurl.curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent.c_str());
    libcurl.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_seconds);
    libcurl.curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    libcurl.curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options.low_speed_seconds);
    libcurl.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
    libcurl.curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    libcurl.curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
    libcurl.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    libcurl.curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
    // A plain Range header, not CURLOPT_RESUME_FROM: a server that ignores it and sends the whole
    // file is handled in start_body instead of failing the transfer.
    if (transfer.resume_from > 0) libcurl.curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    if (!options.token.empty()) {
        // libcurl sends credentials to the host of the URL only, never to a redirect's other host
        // (the CDN holding the file gets a signed URL instead).
        libcurl.curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BEARER));
        libcurl.curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, options.token.c_str());
    }

    const CURLcode code = libcurl.curl_easy_perform(h);
    progress.finish();
    long status = 0;
    libcurl.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t connect_time = 0;
    libcurl.curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_time);
    const bool connected = connect_time > 0 || !transfer.responses.empty();
    const bool closed = std::fclose(transfer.file) == 0;

    Attempt attempt;
    attempt.responses = transfer.responses;
    const HttpResponse final_response = transfer.responses.empty() ? HttpResponse{} : transfer.responses.back();
    if (!transfer.refusal.empty()) {
        attempt.refused = true;
        attempt.reason = transfer.refusal;
        return attempt;
    }
    if (!transfer.failure.empty()) {
        attempt.reason = transfer.failure;
        attempt.transient = transfer.failure_is_transient;
        if (transfer.failure_is_transient) std::filesystem::remove(part_path, error);
        return attempt;
    }
    if (code != CURLE_OK) {
        attempt.reason = describe_curl_error(code, error_buffer, url, connected);
        attempt.transient = is_transient(code, connected);
        return attempt;
    }
    if (!closed) throw_system_error(part_path.string(), "cannot write");
    if (status == 416 && transfer.resume_from > 0) {
        // Nothing left to send: either the part is already whole, or it is longer than the file.
        const ContentRange range = parse_content_range(header_value(final_response, "content-range"));
        if (range.total == transfer.resume_from) {
            attempt.complete = true;
            attempt.size = transfer.resume_from;
            attempt.digest = transfer.hash->hex_digest();
            return attempt;
        }
        std::filesystem::remove(part_path, error);
        attempt.reason = "the server could not resume from byte " + std::to_string(transfer.resume_from) + "; starting over";
        attempt.transient = true;
        return attempt;
    }
    if (!is_success(status)) {
        attempt.reason = describe_http_status(status, final_response, transfer.error_body);
        attempt.transient = is_transient_status(status);
        return attempt;
    }
    attempt.complete = true;
    attempt.size = transfer.resume_from + transfer.received;
    attempt.digest = transfer.hash->hex_digest();
    return attempt;
}

void sync_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_system_error(path.string(), "cannot open");
    const int result = ::fsync(fd);
    ::close(fd);
    if (result != 0) throw_system_error(path.string(), "cannot flush to disk");
}

std::filesystem::path with_suffix(const std::filesystem::path& path, const char* suffix) {
    return path.string() + suffix;
}

}  // namespace

HubOptions HubOptions::from_environment() {
    HubOptions options;
    if (const char* endpoint = environment_value("HF_ENDPOINT")) options.endpoint = endpoint;
    if (const char* token = environment_value("HF_TOKEN")) options.token = token;
    return options;
}

std::string hub_file_url(const HubOptions& options, const HubFile& file) {
    return without_trailing_slashes(options.endpoint) + "/" + percent_encode(file.repo, true) + "/resolve/" +
           percent_encode(options.revision, false) + "/" + percent_encode(file.path, true);
}

std::filesystem::path hub_cache_path(const std::filesystem::path& cache_dir, const HubOptions& options,
                                     const HubFile& file) {
    check_path_components(file.repo, "repository name");
    check_path_components(file.path, "file name");
    std::string revision;
    for (char c : options.revision) {
        if (c == '/') revision += "--";
        else revision += c;
    }
    check_path_components(revision, "revision");
    return cache_dir / "hub" / file.repo / revision / file.path;
}

FetchedFile fetch_hub_file(const HubFile& file, const std::filesystem::path& destination, const HubOptions& options) {
    const std::string url = hub_file_url(options, file);
    std::error_code error;
    if (!options.force && std::filesystem::exists(destination, error)) return {destination, true, {}, {}};
    std::filesystem::create_directories(destination.parent_path(), error);
    if (error) throw Error(ErrorCode::io, destination.parent_path().string() + ": cannot create folder: " + error.message());

    const FileLock lock(with_suffix(destination, ".lock"));
    const std::filesystem::path part = with_suffix(destination, ".part");
    if (options.force) {
        std::filesystem::remove(destination, error);
        std::filesystem::remove(part, error);
    } else if (std::filesystem::exists(destination, error)) {
        return {destination, true, {}, {}};  // another process finished it while this one waited
    }

    // Data that fails its check goes, with whatever an earlier run left in the .part.
    auto reject = [&](const std::string& reason) {
        std::filesystem::remove(part, error);
        throw Error(ErrorCode::invalid_input, url + ": " + reason);
    };

    curl_functions();  // libcurl opened, or an error saying why not, before any file is touched
    const int attempts = std::max(1, options.attempts);
    Attempt attempt;
    for (int number = 1;; ++number) {
        attempt = request_once(file, url, part, options, destination.filename().string());
        if (attempt.refused) reject(attempt.reason);
        if (attempt.complete) break;
        if (!attempt.transient || number >= attempts) {
            // Keep received data for the next run to resume; an empty part helps nobody.
            if (std::filesystem::file_size(part, error) == 0 && !error) std::filesystem::remove(part, error);
            throw Error(ErrorCode::network,
                        url + ": " + attempt.reason +
                            (number > 1 ? " (gave up after " + std::to_string(number) + " attempts)" : ""));
        }
        const auto pause = std::min<std::chrono::milliseconds>(options.backoff * (1LL << (number - 1)), std::chrono::minutes(1));
        log_warning(url + ": " + attempt.reason + "; trying again in " + std::to_string(pause.count()) + " ms (attempt " +
                    std::to_string(number + 1) + " of " + std::to_string(attempts) + ")");
        std::this_thread::sleep_for(pause);
    }

    const auto size = announced_size(attempt.responses);
    if (size && *size != attempt.size) {
        reject("received " + std::to_string(attempt.size) + " bytes, but the server announced " + std::to_string(*size) +
               " (X-Linked-Size); the data was deleted");
    }
    std::string expected = lowercase(file.sha256);
    std::string source = "the SHA-256 mclip pins for " + file.repo + "/" + file.path;
    if (expected.empty()) std::tie(expected, source) = announced_sha256(attempt.responses);
    if (!expected.empty() && attempt.digest != expected) {
        reject("checksum mismatch: the data received has SHA-256 " + attempt.digest + ", but " + source + " says " +
               expected + "; the file was deleted");
    }
    if (expected.empty()) {
        log_warning(url + ": not verified: the server announced no SHA-256 and mclip pins none for this file");
    }
    sync_file(part);
    std::filesystem::rename(part, destination, error);
    if (error) throw Error(ErrorCode::io, destination.string() + ": cannot move the download into place: " + error.message());
    return {destination, false, attempt.digest, expected.empty() ? std::string() : source};
}

}  // namespace mclip
