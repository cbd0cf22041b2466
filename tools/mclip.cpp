// mclip: the command-line front end. Each subcommand lives in its own cmd_*.cpp file.
#include <algorithm>
#include <cstdio>

#include "command.h"
#include "mclip/error.h"
#include "mclip/log.h"
#include "mclip/version.h"

namespace mclip::tools {

static std::vector<CommandEntry>& registry() {
    static std::vector<CommandEntry> entries;
    return entries;
}

bool register_command(std::string name, CommandSetup setup) {
    registry().push_back({std::move(name), setup});
    return true;
}

const std::vector<CommandEntry>& registered_commands() { return registry(); }

}  // namespace mclip::tools

int main(int argc, char** argv) {
    CLI::App app{"mclip: open-vocabulary image recognition with MobileCLIP"};
    app.set_version_flag("--version", std::string(MCLIP_VERSION_STRING));
    app.require_subcommand(1);
    bool verbose = false;
    bool quiet = false;
    app.add_flag("-v,--verbose", verbose, "Print progress details and timings on stderr");
    app.add_flag("-q,--quiet", quiet, "Print only errors on stderr");
    app.parse_complete_callback([&] {
        mclip::log_set_level(verbose ? mclip::LogLevel::debug
                                     : quiet ? mclip::LogLevel::error : mclip::LogLevel::warning);
    });

    int exit_code = 0;
    auto entries = mclip::tools::registered_commands();
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& entry : entries) entry.setup(app, exit_code);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const mclip::Error& e) {
        std::fprintf(stderr, "mclip: error: %s\n", e.what());
        return e.code() == mclip::ErrorCode::invalid_argument ? 2 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mclip: error: %s\n", e.what());
        return 1;
    }
    return exit_code;
}
