// Where mclip's messages go. The library logs through one function an application can redirect
// (to its own logger, a GUI, a Python callback); by default messages go to stderr, because stdout
// belongs to the application's output.
#pragma once

#include <functional>
#include <string_view>

#include "mclip/export.h"

namespace mclip {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

// Called with each message at or above the level; it may be called from any thread (calls are
// serialized).
using LogSink = std::function<void(LogLevel, std::string_view)>;

// Replaces the sink; an empty sink restores the stderr one.
MCLIP_API void log_set_sink(LogSink sink);
// Messages below this level are dropped (default: warning).
MCLIP_API void log_set_level(LogLevel level);
MCLIP_API LogLevel log_level();
// Sends a message to the sink, as the library's own messages go (dropped below the level).
MCLIP_API void log_message(LogLevel level, std::string_view message);

}  // namespace mclip
