// The host side of a guest's HTTP request: the egress policy applied to every hop, DNS
// resolved once per hop through a Resolver and the connection pinned to the address that
// was checked (a second lookup cannot rebind it), redirects followed by hand and checked
// again (at most 5), and limits on request bytes, response bytes and time (never past the
// run's deadline). libcurl does the HTTP: no proxy, no .netrc, no cookies, http and https
// only. Bodies come back as the server meant them, so a scan for secrets sees them: moat
// asks for the identity coding (the caller's Accept-Encoding and TE are dropped), decodes
// a content coding a server uses anyway, and refuses one it cannot decode or a transfer
// coding other than chunked.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "execution/net/egress.h"
#include "execution/net/secret_store.h"

namespace moat::net {

// Name → addresses. The system's getaddrinfo by default; tests use their own.
class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual Result<std::vector<IpAddress>> Resolve(const std::string& host) = 0;
};
std::unique_ptr<Resolver> SystemResolver();

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  Headers headers;  // of the final response
  std::string body;
  std::string url;  // the final URL (after redirects), normalised
  int redirects = 0;
};

struct HttpLimits {
  uint64_t max_request_bytes = 1u << 20;   // URL + headers + body
  uint64_t max_response_bytes = 8u << 20;  // body, after any decoding
  uint64_t max_header_bytes = 64u << 10;   // response headers of one hop
  uint64_t timeout_us = 30'000'000;        // the whole exchange, redirects included
  int max_redirects = 5;
  std::string ca_file;  // extra CA bundle for https (tests); "" = the system's
};

struct HttpContext {
  const EgressPolicy* policy = nullptr;
  Resolver* resolver = nullptr;
  uint64_t deadline_ns = 0;                   // CLOCK_MONOTONIC; 0 = none
  const std::atomic<bool>* cancel = nullptr;  // may be null
  // The run's secrets, already substituted into the request: a redirect hop to a host a
  // secret is not bound to is refused when the request it would send (URL, headers or
  // body) carries that secret's value in any encoding, and a hop to a host one is bound to
  // may not ask for part of the response (Range, If-Range). May be null.
  const std::vector<Secret>* secrets = nullptr;
};

// ErrorCode::kDenied for a policy refusal (URL, method or address; the message names
// which), kLimit for a size or time limit, kInvalidArgument for a malformed request
// (URL, header with a line break...), kIo for network failures.
Result<HttpResponse> HttpFetch(const HttpContext& ctx, const HttpRequest& request,
                               const HttpLimits& limits);

}  // namespace moat::net
