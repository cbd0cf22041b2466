// The request bodies `mclip serve` parses itself (server/http_util.cpp): base64 and data URIs
// (images inside JSON requests) and multipart/form-data uploads. The first line of the input is
// the Content-Type header, the rest the body; both parsers see every input.
#include "fuzz_support.h"
#include "http_util.h"

#include <string_view>

namespace {

void server_request(std::span<const uint8_t> bytes) {
    const std::string_view input(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const size_t line_end = input.find('\n');
    const std::string_view content_type = input.substr(0, line_end);
    const std::string_view body = line_end == std::string_view::npos ? std::string_view() : input.substr(line_end + 1);
    mclip::fuzz::expect_clean([&] {
        if (mclip::server::is_data_uri(input)) (void)mclip::server::decode_data_uri(input);
        (void)mclip::server::base64_decode(input);
    });
    mclip::fuzz::expect_clean([&] {
        const std::string boundary = mclip::server::multipart_boundary(content_type);
        for (const auto& part : mclip::server::parse_multipart(body, boundary)) {
            // The views must lie inside the body.
            if (!part.data.empty() && (part.data.data() < body.data() || part.data.data() + part.data.size() > body.data() + body.size())) {
                std::abort();
            }
        }
    });
}

}  // namespace

MCLIP_FUZZ_TARGET(server_request)
