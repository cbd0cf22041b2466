// Logging goes through one function the embedding application can redirect; stdout is reserved
// for a command's output, so the default sink writes to stderr.
#pragma once

#include <functional>
#include <string_view>

namespace mclip {

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };

using LogSink = std::function<void(LogLevel, std::string_view)>;

// Replaces the sink (nullptr restores the stderr sink). Not thread-safe against concurrent logging.
void log_set_sink(LogSink sink);
// Messages below this level are dropped (default: warning).
void log_set_level(LogLevel level);
LogLevel log_level();

void log_message(LogLevel level, std::string_view message);
inline void log_debug(std::string_view m) { log_message(LogLevel::debug, m); }
inline void log_info(std::string_view m) { log_message(LogLevel::info, m); }
inline void log_warning(std::string_view m) { log_message(LogLevel::warning, m); }
inline void log_error(std::string_view m) { log_message(LogLevel::error, m); }

}  // namespace mclip
