// A local HTTP server laid out like Hugging Face (/<repo>/resolve/<revision>/<file>) for the
// download tests: it listens on 127.0.0.1 only, answers Range requests, announces digests the way
// the hub does (X-Linked-Etag, ETag, X-Linked-Size), can redirect like the hub does to its CDN,
// can cut a connection mid-body, and records every request it gets.
#pragma once

#include <httplib.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mclip::testing {

class HubTestServer {
public:
    struct File {
        std::string content;
        std::string announced_sha256;  // sent as X-Linked-Etag and ETag; empty: no digest headers
        std::string redirect_to;       // when set: answer 302 with this Location (plus digest headers)
        size_t cut_first_request_after = 0;  // > 0: the first request gets this many bytes, then a closed connection
        std::string git_etag = {};  // without announced_sha256: sent as ETag, as the hub does for plain Git files
    };
    struct Request {
        std::string path;
        std::string range;          // the Range header, empty when none
        std::string authorization;  // the Authorization header, empty when none
    };

    HubTestServer();
    ~HubTestServer();
    HubTestServer(const HubTestServer&) = delete;
    HubTestServer& operator=(const HubTestServer&) = delete;

    // Serves `file` at /<repo>/resolve/<revision>/<path>.
    void add(const std::string& repo, const std::string& path, File file, const std::string& revision = "main");
    // Serves `file` at an arbitrary URL path (a CDN location).
    void add_at(const std::string& url_path, File file);

    std::string endpoint() const;  // "http://127.0.0.1:<port>"
    std::vector<Request> requests() const;

private:
    void handle(const httplib::Request& request, httplib::Response& response);

    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::map<std::string, File> files_;
    std::map<std::string, int> served_;
    std::vector<Request> requests_;
};

// A loopback port with nothing listening on it (bound, then released).
int closed_local_port();

}  // namespace mclip::testing
