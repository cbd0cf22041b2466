// Fetching files from a Hugging Face model repository (or a mirror laid out like it):
//
//   {endpoint}/{repo}/resolve/{revision}/{path}
//
// Data arrives in "<file>.part" beside the destination, so an interrupted transfer resumes with an
// HTTP Range request. The finished file is hashed and checked against the SHA-256 mclip pins for
// it or, when it pins none, the one the server announces (X-Linked-Etag, else a 64-hex-digit
// ETag), and only then renamed into place. A pinned file whose announced digest differs is refused
// as soon as the answer's headers arrive: the pin, not the server, says which file is wanted. A
// lock file ("<file>.lock") keeps two processes from writing the same file at once: the second
// waits, then finds the file done.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "mclip/mclip.h"

namespace mclip {

struct HubFile {
    std::string repo;    // "apple/MobileCLIP-S0"
    std::string path;    // file inside the repository: "mobileclip_s0.pt"
    std::string sha256;  // SHA-256 mclip pins for the file (lowercase hex); empty when none is confirmed
};

struct HubOptions {
    std::string endpoint = "https://huggingface.co";
    std::string revision = "main";             // branch, tag or commit
    std::string token;                         // bearer token, sent to the endpoint's host only
    bool force = false;                        // fetch again even when the file is already there
    int attempts = 4;                          // tries per file when the failure may be transient
    std::chrono::milliseconds backoff{1000};   // pause before the second try; doubles after each
    long connect_timeout_seconds = 30;
    long low_speed_seconds = 60;               // give up when under 1 KiB/s for this long
    DownloadProgressCallback on_progress;      // told each file's bytes so far (besides the terminal bar)

    // Defaults with HF_ENDPOINT and HF_TOKEN applied when set.
    static HubOptions from_environment();
};

// The download address of a file (path segments percent-encoded, the revision as one segment).
std::string hub_file_url(const HubOptions& options, const HubFile& file);

// Where a file lives in a cache folder: <cache>/hub/<owner>/<name>/<revision>/<path>, with any
// '/' in the revision written as "--". Throws Error(invalid_argument) for names that would leave
// the folder.
std::filesystem::path hub_cache_path(const std::filesystem::path& cache_dir, const HubOptions& options,
                                     const HubFile& file);

// default_cache_dir() is declared in the public API (mclip/mclip.h) and defined in cache_dir.cpp.

struct FetchedFile {
    std::filesystem::path path;
    bool from_cache = false;       // it was already there; nothing was transferred
    std::string sha256;            // digest of what was transferred (empty when from_cache)
    std::string checksum_source;   // what it was verified against; empty when nothing could be
};

// Fetches `file` into `destination` (folders are created). An existing destination is used as it
// is unless options.force. Throws Error whose message starts with the URL: network failures
// (ErrorCode::network: DNS, connection, timeout, HTTP status with the server's explanation), and
// ErrorCode::invalid_input for a server announcing another digest than file.sha256 and for data
// that does not match its digest; those leave neither the destination nor a .part behind.
FetchedFile fetch_hub_file(const HubFile& file, const std::filesystem::path& destination, const HubOptions& options);

}  // namespace mclip
