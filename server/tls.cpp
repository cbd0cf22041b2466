#include "tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "mclip/error.h"

namespace mclip::server {

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::invalid_input, message); }

std::string fingerprint(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &n)) return "";
    std::string out;
    char byte[4];
    for (unsigned i = 0; i < n; ++i) {
        std::snprintf(byte, sizeof byte, i ? ":%02X" : "%02X", md[i]);
        out += byte;
    }
    return out;
}

// Writes certificate and key to a new owner-only file in the temporary folder.
TlsFiles write_pem(X509* cert, EVP_PKEY* key) {
    std::string path = (std::filesystem::temp_directory_path() / "mclip-serve-XXXXXX.pem").string();
    const int fd = mkstemps(path.data(), 4);
    if (fd < 0) throw Error(ErrorCode::io, "cannot create a temporary certificate file in " + std::filesystem::temp_directory_path().string());
    TlsFiles files;
    files.pem = path;
    FILE* f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        throw Error(ErrorCode::io, "cannot write " + path);
    }
    const bool ok = PEM_write_X509(f, cert) && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    if (std::fclose(f) != 0 || !ok) throw Error(ErrorCode::io, "cannot write " + path);
    files.fingerprint = fingerprint(cert);
    return files;
}

}  // namespace

TlsFiles::TlsFiles(TlsFiles&& other) noexcept : pem(std::move(other.pem)), fingerprint(std::move(other.fingerprint)) { other.pem.clear(); }

TlsFiles::~TlsFiles() {
    if (!pem.empty()) std::remove(pem.c_str());
}

void load_civetweb_openssl3_compat() {
    std::string errors;
    for (const char* path : {MCLIP_CIVETWEB_OPENSSL3_BUILD, MCLIP_CIVETWEB_OPENSSL3_INSTALLED}) {
        if (dlopen(path, RTLD_NOW | RTLD_GLOBAL)) return;
        errors += std::string("\n  ") + dlerror();
    }
    throw Error(ErrorCode::unsupported, "https needs mclip's CivetWeb compatibility library, which did not load:" + errors);
}

TlsFiles combine_pem(const std::string& cert_file, const std::string& key_file) {
    if (cert_file.empty() || key_file.empty()) throw Error(ErrorCode::invalid_argument, "--cert and --key go together");
    Bio cert_bio(BIO_new_file(cert_file.c_str(), "r"));
    if (!cert_bio) throw Error(ErrorCode::io, "cannot open certificate " + cert_file);
    Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    if (!cert) fail(cert_file + " is not a PEM certificate");
    Bio key_bio(BIO_new_file(key_file.c_str(), "r"));
    if (!key_bio) throw Error(ErrorCode::io, "cannot open key " + key_file);
    Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (!key) fail(key_file + " is not an unencrypted PEM private key");
    if (X509_check_private_key(cert.get(), key.get()) != 1) fail(key_file + " is not the key of " + cert_file);
    return write_pem(cert.get(), key.get());
}

TlsFiles make_self_signed(const std::string& host) {
    Key key(EVP_EC_gen("P-256"));
    if (!key) fail("cannot generate a key");
    Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(std::time(nullptr)));
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mclip serve"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    // Browsers look only at the subject alternative names.
    unsigned char addr[16];
    const bool is_ip = inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
    std::string san = "DNS:localhost,IP:127.0.0.1";
    if (!host.empty() && host != "0.0.0.0" && host != "::" && host != "localhost" && host != "127.0.0.1") {
        san += (is_ip ? ",IP:" : ",DNS:") + host;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    if (!ext) fail("cannot make the certificate's names");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
    if (!X509_sign(cert.get(), key.get(), EVP_sha256())) fail("cannot sign the certificate");
    return write_pem(cert.get(), key.get());
}

}  // namespace mclip::server
