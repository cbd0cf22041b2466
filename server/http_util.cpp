#include "http_util.h"

#include <algorithm>
#include <cctype>

#include "mclip/error.h"

namespace mclip::server {

namespace {

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

int base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet
    if (c == '/' || c == '_') return 63;
    return -1;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// The value of `key=` in a header's parameters (quoted or not), or "".
std::string header_param(std::string_view header, std::string_view key) {
    const std::string lowered = lower(header);
    size_t pos = 0;
    while ((pos = lowered.find(lower(key) + "=", pos)) != std::string::npos) {
        const bool at_start = pos == 0 || lowered[pos - 1] == ';' || lowered[pos - 1] == ' ' || lowered[pos - 1] == '\t';
        if (!at_start) {
            ++pos;
            continue;
        }
        std::string_view rest = header.substr(pos + key.size() + 1);
        if (!rest.empty() && rest.front() == '"') {
            const size_t end = rest.find('"', 1);
            if (end == std::string_view::npos) bad("unterminated quoted parameter in \"" + std::string(header) + "\"");
            return std::string(rest.substr(1, end - 1));
        }
        return std::string(trim(rest.substr(0, rest.find(';'))));
    }
    return "";
}

}  // namespace

std::vector<uint8_t> base64_decode(std::string_view text) {
    std::vector<uint8_t> out;
    out.reserve(text.size() / 4 * 3);
    uint32_t buffer = 0;
    int bits = 0;
    size_t padding = 0;
    for (unsigned char c : text) {
        if (c == '=') {
            ++padding;
            continue;
        }
        if (c == '\n' || c == '\r' || c == ' ') continue;
        const int v = base64_value(c);
        if (v < 0 || padding > 0) bad("invalid base64 data");
        buffer = (buffer << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<uint8_t>((buffer >> bits) & 0xff));
        }
    }
    if (padding > 2 || bits >= 6) bad("invalid base64 data (truncated)");
    return out;
}

bool is_data_uri(std::string_view text) { return text.size() >= 5 && lower(text.substr(0, 5)) == "data:"; }

std::vector<uint8_t> decode_data_uri(std::string_view uri) {
    if (!is_data_uri(uri)) bad("an image must be a data URI (data:image/...;base64,...)");
    const size_t comma = uri.find(',');
    if (comma == std::string_view::npos) bad("data URI without a comma");
    const std::string meta = lower(uri.substr(5, comma - 5));
    if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64") bad("data URI must be base64-encoded (data:image/...;base64,...)");
    return base64_decode(uri.substr(comma + 1));
}

std::string multipart_boundary(std::string_view content_type) {
    if (lower(trim(content_type.substr(0, content_type.find(';')))) != "multipart/form-data") {
        bad("expected Content-Type multipart/form-data");
    }
    std::string boundary = header_param(content_type, "boundary");
    if (boundary.empty() || boundary.size() > 200) bad("multipart/form-data without a valid boundary");
    return boundary;
}

std::vector<FormPart> parse_multipart(std::string_view body, const std::string& boundary) {
    const std::string delimiter = "--" + boundary;
    std::vector<FormPart> parts;
    size_t pos = body.find(delimiter);
    if (pos == std::string_view::npos) bad("multipart body without its boundary");
    for (;;) {
        pos += delimiter.size();
        if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
        if (body.substr(pos, 2) != "\r\n") bad("malformed multipart delimiter line");
        pos += 2;
        const size_t headers_end = body.find("\r\n\r\n", pos);
        if (headers_end == std::string_view::npos) bad("multipart part without the end of its headers");
        FormPart part;
        std::string_view headers = body.substr(pos, headers_end - pos);
        while (!headers.empty()) {
            const size_t eol = headers.find("\r\n");
            const std::string_view line = headers.substr(0, eol);
            headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
            const size_t colon = line.find(':');
            if (colon == std::string_view::npos) bad("malformed multipart part header");
            const std::string key = lower(trim(line.substr(0, colon)));
            const std::string_view value = trim(line.substr(colon + 1));
            if (key == "content-disposition") {
                part.name = header_param(value, "name");
                part.filename = header_param(value, "filename");
            } else if (key == "content-type") {
                part.content_type = std::string(value);
            }
        }
        const size_t data_start = headers_end + 4;
        const size_t next = body.find("\r\n" + delimiter, data_start);
        if (next == std::string_view::npos) bad("multipart body ends inside a part (no closing boundary)");
        part.data = body.substr(data_start, next - data_start);
        if (part.name.empty()) bad("multipart part without a field name");
        parts.push_back(std::move(part));
        if (parts.size() > 1000) bad("too many multipart parts");
        pos = next + 2;
    }
}

}  // namespace mclip::server
