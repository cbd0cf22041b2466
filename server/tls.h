// Certificates for https: CivetWeb reads the certificate and its private key from one PEM file,
// which is written here (owner-only) and removed when the server stops.
#pragma once

#include <string>

namespace mclip::server {

struct TlsFiles {
    std::string pem;          // certificate followed by the key
    std::string fingerprint;  // SHA-256 of the certificate, for checking it on a phone
    TlsFiles() = default;
    TlsFiles(TlsFiles&& other) noexcept;
    TlsFiles& operator=(TlsFiles&&) = delete;
    ~TlsFiles();
};

// Makes CivetWeb's https work with OpenSSL 3 (see civetweb_openssl3.c); call before it starts.
void load_civetweb_openssl3_compat();

// --cert and --key: both files checked to parse and match.
TlsFiles combine_pem(const std::string& cert_file, const std::string& key_file);
// A fresh P-256 key and a certificate valid for a year for `host`, localhost and 127.0.0.1.
TlsFiles make_self_signed(const std::string& host);

}  // namespace mclip::server
