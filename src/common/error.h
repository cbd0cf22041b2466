// One error vocabulary for the whole library: mclip::Error (public, mclip/error.h) carries an
// ErrorCode and a message meant for the user ("model.gguf: tensor 'x' has shape [3] but [4] was
// expected"). The command-line tool and the public API's callers catch it at their boundary.
#pragma once

#include <string_view>

#include "mclip/error.h"

namespace mclip {

// Throws Error(ErrorCode::io, "<path>: <what>: <strerror(errno)>") using the current errno.
[[noreturn]] void throw_system_error(std::string_view path, std::string_view what);

}  // namespace mclip
