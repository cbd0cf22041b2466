// `mclip serve`: one loaded model behind an HTTP + WebSocket server (CivetWeb), with the camera
// web app at /. See docs/server.md for the API.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "mclip/mclip.h"

namespace mclip::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                // 0: any free port (the one chosen is printed)
    std::string cert_file;          // PEM certificate (chain) and its key: serve https
    std::string key_file;
    bool tls_self_signed = false;   // generate a certificate for this run
    std::string model_id;           // the name clients pass as "model" (also accepted: the architecture)
    size_t max_body_bytes = 32u << 20;
    uint64_t max_pixels = 4096u * 4096u;  // per decoded image
    int max_batch = 8;
    std::chrono::microseconds max_wait{3000};
    int max_streams = 8;
    int http_threads = 16;          // connections served at once, besides the streams
    int request_timeout_ms = 30000; // a client that stalls this long while sending is dropped
    LabelSetOptions label_options;  // text-embedding cache of label sets
};

// Prepares the certificate, loads the model with `load_model`, and serves it until SIGINT or
// SIGTERM. Prints "listening on URL" on stdout once it accepts connections. Throws Error(io)
// when the address cannot be bound, Error(invalid_input) for a certificate or key it cannot use.
void serve(const std::function<Model()>& load_model, const ServerOptions& options);

}  // namespace mclip::server
