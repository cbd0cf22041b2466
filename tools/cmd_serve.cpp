// `mclip serve`: the model behind an HTTP + WebSocket API, with the camera web app at /
// (server/ does the work; docs/server.md describes the API).
#include <filesystem>

#include "command.h"
#include "label_options.h"
#include "mclip/mclip.h"
#include "model_options.h"
#include "server.h"

namespace {

struct ServeArgs {
    mclip::tools::ModelOptions model;
    mclip::server::ServerOptions server;
    mclip::tools::CacheOptions cache;
    int max_wait_ms = 3;
};

int run_serve(ServeArgs& args) {
    args.server.max_wait = std::chrono::milliseconds(args.max_wait_ms);
    args.server.label_options = mclip::tools::label_set_options({}, args.cache);
    // Clients name the model as it was given: a registered name as is, a file by its stem.
    const std::filesystem::path given(args.model.model);
    args.server.model_id = std::filesystem::exists(given) ? given.stem().string() : args.model.model;
    mclip::server::serve([&] { return mclip::tools::load_model(args.model); }, args.server);
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<ServeArgs>();
    auto* cmd = app.add_subcommand("serve", "Serve a model over HTTP and WebSocket, with a camera web app at /");
    mclip::tools::add_model_options(*cmd, args->model)->required();
    auto& s = args->server;
    cmd->add_option("--host", s.host, "Address to listen on (0.0.0.0: every interface, for phones on the network)")->capture_default_str();
    cmd->add_option("--port", s.port, "Port to listen on (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
    auto* cert = cmd->add_option("--cert", s.cert_file, "PEM certificate (chain) to serve https")->check(CLI::ExistingFile);
    auto* key = cmd->add_option("--key", s.key_file, "PEM private key of --cert")->check(CLI::ExistingFile);
    cert->needs(key);
    key->needs(cert);
    cmd->add_flag("--tls-self-signed", s.tls_self_signed, "Serve https with a certificate made for this run")->excludes(cert);
    cmd->add_option("--max-batch", s.max_batch, "Most images encoded together")->capture_default_str()->check(CLI::Range(1, 256));
    cmd->add_option("--max-wait-ms", args->max_wait_ms, "How long an image waits for others to batch with")
        ->capture_default_str()->check(CLI::Range(0, 1000));
    cmd->add_option("--max-streams", s.max_streams, "WebSocket streams at once (more are refused with 503)")
        ->capture_default_str()->check(CLI::Range(1, 1024));
    cmd->add_option("--max-body", s.max_body_bytes, "Largest request body or stream frame, in bytes")->capture_default_str();
    cmd->add_option("--max-pixels", s.max_pixels, "Largest image accepted, in pixels")->capture_default_str();
    cmd->add_option("--http-threads", s.http_threads, "HTTP connections served at once")->capture_default_str()->check(CLI::Range(1, 1024));
    cmd->add_option("--timeout-ms", s.request_timeout_ms, "Drop a client that stalls this long")->capture_default_str()->check(CLI::Range(100, 3600000));
    mclip::tools::add_cache_options(*cmd, args->cache);
    cmd->callback([args, &exit_code] { exit_code = run_serve(*args); });
}

MCLIP_REGISTER_COMMAND("serve", setup);

}  // namespace
