// The entry points of moat-http.so: the libcurl backend for guests' requests (with the
// system's resolver), and plain streaming POSTs for moat's own (model providers).
#include "execution/net/http_backend.h"
#include "execution/net/http_stream.h"

extern "C" __attribute__((visibility("default"))) moat::net::HttpBackend* moat_http_backend_v1() {
  static std::shared_ptr<moat::net::HttpBackend> backend = moat::net::MakeHttpBackend();
  return backend.get();
}

extern "C" __attribute__((visibility("default"))) moat::net::StreamingHttp* moat_http_stream_v1() {
  static std::shared_ptr<moat::net::StreamingHttp> streaming = moat::net::MakeStreamingHttp();
  return streaming.get();
}
