// A plain streaming HTTP POST for moat's own trusted requests (a model provider's API),
// as opposed to HttpFetch, which carries a guest's requests under an egress policy. The
// response body is handed over as it arrives. libcurl does it, in moat_net and in the
// moat-http.so plugin, so the binary loads libcurl only when it is used.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "execution/net/http_client.h"

namespace moat::net {

struct StreamRequest {
  std::string url;
  Headers headers;
  std::string body;
  uint64_t connect_timeout_us = 10'000'000;
  uint64_t idle_timeout_us = 120'000'000;  // no byte for this long ends the request
  uint64_t total_timeout_us = 600'000'000;
  std::string ca_file;  // an extra CA bundle (tests); "" = the system's
  // The response body as received (before a content coding such as gzip is decoded) may
  // not exceed this many bytes (0: no limit); past it the transfer stops with kLimit and
  // a message starting with kResponseTooLarge.
  uint64_t max_received_bytes = 0;
};

inline constexpr const char* kResponseTooLarge = "the response is larger than ";

class StreamingHttp {
 public:
  virtual ~StreamingHttp() = default;
  // POSTs and calls `on_body` with the response's status and each piece of its body
  // (returning false stops the transfer). Returns the HTTP status; response headers (names lower
  // case) go to `headers` when given. kIo for a transport failure, kLimit for a timeout,
  // cancellation or a body past max_received_bytes.
  virtual Result<int> Post(const StreamRequest& request,
                           const std::function<bool(int, std::string_view)>& on_body,
                           Headers* headers, const std::atomic<bool>* cancel) = 0;
};

std::shared_ptr<StreamingHttp> MakeStreamingHttp();                // moat_net
Result<std::shared_ptr<StreamingHttp>> LoadStreamingHttpPlugin();  // moat_execution

inline constexpr const char* kStreamPluginEntry = "moat_http_stream_v1";
using StreamPluginEntry = StreamingHttp* (*)();

}  // namespace moat::net
