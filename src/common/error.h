// One error vocabulary for the whole library.
//
// Inside the C++ core, failures are thrown as mclip::Error, which carries an ErrorCode and a
// message meant for the user ("model.gguf: tensor 'x' has shape [3] but [4] was expected").
// The command-line tool and the public C API catch it at their boundary and turn it into an
// exit code or a status; nothing throws past that boundary.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mclip {

enum class ErrorCode {
    invalid_argument,   // the caller passed something unusable (empty label list, bad flag)
    invalid_input,      // a file's content is wrong: truncated, corrupt, misshapen, unsupported
    io,                 // the operating system refused: missing file, permission, disk full
    unsupported,        // valid input this build or CPU cannot handle
    network,            // a download failed
    internal,           // a broken invariant inside mclip
};

const char* to_string(ErrorCode code);

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const { return code_; }

private:
    ErrorCode code_;
};

// Throws Error(ErrorCode::io, "<path>: <what>: <strerror(errno)>") using the current errno.
[[noreturn]] void throw_system_error(std::string_view path, std::string_view what);

}  // namespace mclip
