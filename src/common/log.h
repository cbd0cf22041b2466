// Shorthands for the library's own messages (the sink, the level and log_message are mclip/log.h).
#pragma once

#include <string_view>

#include "mclip/log.h"

namespace mclip {

inline void log_debug(std::string_view m) { log_message(LogLevel::debug, m); }
inline void log_info(std::string_view m) { log_message(LogLevel::info, m); }
inline void log_warning(std::string_view m) { log_message(LogLevel::warning, m); }
inline void log_error(std::string_view m) { log_message(LogLevel::error, m); }

}  // namespace mclip
