// The mclip tool is a set of subcommands, one file each (cmd_<name>.cpp). A file registers its
// subcommand with MCLIP_REGISTER_COMMAND; mclip.cpp builds the CLI from the registry, so adding a
// command touches no other file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace mclip::tools {

// Adds one subcommand to `app`. The subcommand's callback does the work and stores its exit
// status in `exit_code` (errors may also be thrown as mclip::Error; main() reports them).
using CommandSetup = void (*)(CLI::App& app, int& exit_code);

struct CommandEntry {
    std::string name;
    CommandSetup setup;
};

bool register_command(std::string name, CommandSetup setup);
const std::vector<CommandEntry>& registered_commands();

}  // namespace mclip::tools

#define MCLIP_REGISTER_COMMAND(name, setup) \
    [[maybe_unused]] static const bool mclip_registered_command_ = ::mclip::tools::register_command(name, setup)
