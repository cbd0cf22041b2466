// CivetWeb 1.15 as Debian builds it loads OpenSSL at run time (dlopen "libssl.so") and looks up
// SSL_get_peer_certificate, a function OpenSSL 3 renamed SSL_get1_peer_certificate: the lookup
// finds nothing and every https connection calls a null pointer. This library carries the
// SONAME "libssl.so", depends on the real libssl and adds the old name; the server loads it
// before CivetWeb starts, so CivetWeb's dlopen gets it (the loader matches loaded objects by
// SONAME) and its dlsym finds every other function in the real libssl behind it.
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509* SSL_get_peer_certificate(const SSL* ssl);

X509* SSL_get_peer_certificate(const SSL* ssl) { return SSL_get1_peer_certificate(ssl); }
