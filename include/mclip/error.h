// The error mclip throws: a code for programs and a message for people.
#pragma once

#include <stdexcept>
#include <string>

#include "mclip/export.h"

namespace mclip {

enum class ErrorCode {
    invalid_argument,   // the caller passed something unusable (empty label list, bad flag)
    invalid_input,      // a file's content is wrong: truncated, corrupt, misshapen, unsupported
    io,                 // the operating system refused: missing file, permission, disk full
    unsupported,        // valid input this build or CPU cannot handle
    network,            // a download failed
    internal,           // a broken invariant inside mclip
};

MCLIP_API const char* to_string(ErrorCode code);

class MCLIP_API Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const { return code_; }

private:
    ErrorCode code_;
};

}  // namespace mclip
