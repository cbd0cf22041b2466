#include "download/hub_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace mclip::testing {

HubTestServer::HubTestServer() {
    server_.Get(R"(/.*)", [this](const httplib::Request& request, httplib::Response& response) { handle(request, response); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("test server: cannot bind a loopback port");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib's stop() does nothing until the listening loop runs: a test that ends first would
    // wait in the destructor's join forever, so the server is not handed out before it listens.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

HubTestServer::~HubTestServer() {
    server_.stop();
    thread_.join();
}

void HubTestServer::add(const std::string& repo, const std::string& path, File file, const std::string& revision) {
    add_at("/" + repo + "/resolve/" + revision + "/" + path, std::move(file));
}

void HubTestServer::add_at(const std::string& url_path, File file) {
    std::lock_guard lock(mutex_);
    files_[url_path] = std::move(file);
}

std::string HubTestServer::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<HubTestServer::Request> HubTestServer::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

void HubTestServer::handle(const httplib::Request& request, httplib::Response& response) {
    File file;
    int previous_requests = 0;
    {
        std::lock_guard lock(mutex_);
        requests_.push_back({request.path, request.get_header_value("Range"), request.get_header_value("Authorization")});
        const auto it = files_.find(request.path);
        if (it == files_.end()) {
            // What the hub answers for a missing file.
            response.status = 404;
            response.set_header("X-Error-Code", "EntryNotFound");
            response.set_header("X-Error-Message", "Entry not found");
            response.set_content("Entry not found", "text/plain");
            return;
        }
        file = it->second;
        previous_requests = served_[request.path]++;
    }
    if (!file.announced_sha256.empty()) {
        response.set_header("X-Linked-Etag", "\"" + file.announced_sha256 + "\"");
        response.set_header("ETag", "\"" + file.announced_sha256 + "\"");
        response.set_header("X-Linked-Size", std::to_string(file.content.size()));
    } else if (!file.git_etag.empty()) {
        response.set_header("ETag", "\"" + file.git_etag + "\"");
    }
    if (!file.redirect_to.empty()) {
        response.status = 302;
        response.set_header("Location", file.redirect_to);
        return;
    }
    // httplib applies the request's Range to what the provider offers (206 + Content-Range).
    auto content = std::make_shared<std::string>(std::move(file.content));
    const size_t cut = previous_requests == 0 ? file.cut_first_request_after : 0;
    response.set_content_provider(
        content->size(), "application/octet-stream", [content, cut](size_t offset, size_t length, httplib::DataSink& sink) {
            if (cut > 0 && offset >= cut) return false;  // drop the connection mid-body
            size_t chunk = std::min<size_t>(length, 1 << 20);
            if (cut > 0) chunk = std::min(chunk, cut - offset);
            sink.write(content->data() + offset, chunk);
            return true;
        });
}

int closed_local_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        throw std::runtime_error("cannot find a free loopback port");
    }
    const int port = ntohs(address.sin_port);
    ::close(fd);
    return port;
}

}  // namespace mclip::testing
