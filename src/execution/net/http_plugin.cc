// The entry point of moat-http.so: the libcurl backend with the system's resolver.
#include "execution/net/http_backend.h"

extern "C" __attribute__((visibility("default"))) moat::net::HttpBackend* moat_http_backend_v1() {
  static std::shared_ptr<moat::net::HttpBackend> backend = moat::net::MakeHttpBackend();
  return backend.get();
}
