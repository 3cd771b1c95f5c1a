// The seam between a guest's moat.http_request and the network code. The runtime
// (moat_execution) sees only this interface; the implementation (moat_net) links libcurl,
// whose dozen shared dependencies would otherwise load in every `moat` start, so the
// binary loads it from a plugin beside itself the first time a guest makes a request.
//
// One Fetch applies everything a run's NetworkGrant says, in this order:
//   1. parse the grant (rule sets, networks); a bad grant is kInvalidArgument;
//   2. parse and normalise the guest's URL (placeholders still in it) and check the
//      method and URL against every rule set;
//   3. refuse a request that already holds a secret's value, substitute the placeholders
//      of granted secrets for hosts they are bound to (secrets.h);
//   4. HttpFetch: addresses checked after one DNS lookup, the connection pinned, redirects
//      re-checked (a hop that would carry a secret to an unbound host is refused);
//   5. redact every granted secret's value from the response's headers and body.
// Error messages are redacted too, so nothing a guest reads holds a value.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "execution/exec.h"
#include "execution/net/http_client.h"

namespace moat::net {

struct FetchReport {
  std::vector<std::string> redacted;  // names of secrets redacted from the response
};

class HttpBackend {
 public:
  virtual ~HttpBackend() = default;
  virtual Result<HttpResponse> Fetch(const NetworkGrant& grant, const HttpRequest& request,
                                     const HttpLimits& limits, uint64_t deadline_ns,
                                     const std::atomic<bool>* cancel, FetchReport* report) = 0;
};

// The libcurl backend, in moat_net. `resolver` null: the system's resolver.
std::shared_ptr<HttpBackend> MakeHttpBackend(std::shared_ptr<Resolver> resolver = nullptr);

// The libcurl backend from the plugin beside the executable (moat-http.so), loaded once
// per process on first use. In moat_execution; the error says why it could not load.
Result<std::shared_ptr<HttpBackend>> LoadHttpBackendPlugin();

// The plugin's one exported symbol.
inline constexpr const char* kHttpPluginFile = "moat-http.so";
inline constexpr const char* kHttpPluginEntry = "moat_http_backend_v1";
using HttpPluginEntry = HttpBackend* (*)();

}  // namespace moat::net
