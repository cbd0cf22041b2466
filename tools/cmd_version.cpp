// `mclip version`: the library version and the kernels this CPU and build can use.
#include <cstdio>

#include "command.h"
#include "mclip/version.h"

namespace {

void setup(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("version", "Print the version of mclip");
    cmd->callback([&exit_code] {
        std::printf("mclip %s\n", MCLIP_VERSION_STRING);
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("version", setup);

}  // namespace
