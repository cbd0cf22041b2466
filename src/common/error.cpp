#include "common/error.h"

#include <cerrno>
#include <cstring>

namespace mclip {

const char* to_string(ErrorCode code) {
    switch (code) {
        case ErrorCode::invalid_argument: return "invalid argument";
        case ErrorCode::invalid_input: return "invalid input";
        case ErrorCode::io: return "I/O error";
        case ErrorCode::unsupported: return "unsupported";
        case ErrorCode::network: return "network error";
        case ErrorCode::internal: return "internal error";
    }
    return "unknown error";
}

void throw_system_error(std::string_view path, std::string_view what) {
    const int saved = errno;
    throw Error(ErrorCode::io, std::string(path) + ": " + std::string(what) + ": " + std::strerror(saved));
}

}  // namespace mclip
