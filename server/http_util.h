// Request-body parsing for the server: base64 and data URIs (images inside JSON), and
// multipart/form-data (file uploads). Malformed input throws Error(invalid_argument) with a
// message the client gets back in a 400.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mclip::server {

std::vector<uint8_t> base64_decode(std::string_view text);

// "data:image/png;base64,...." → the decoded bytes. Throws for anything else.
bool is_data_uri(std::string_view text);
std::vector<uint8_t> decode_data_uri(std::string_view uri);

struct FormPart {
    std::string name;       // the form field
    std::string filename;   // empty for plain fields
    std::string content_type;
    std::string_view data;  // into the body
};

// The boundary parameter of a multipart/form-data Content-Type; throws when absent.
std::string multipart_boundary(std::string_view content_type);
// Parts of a multipart body (views into `body`, which must outlive them).
std::vector<FormPart> parse_multipart(std::string_view body, const std::string& boundary);

}  // namespace mclip::server
