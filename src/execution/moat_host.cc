// The `moat` host API: HTTP for guests (guests/include/moat/http.h is the guest's side).
// This file moves bytes between guest memory and the network backend and keeps the run's
// limits; the policy, the secrets and libcurl are behind net::HttpBackend.
//
//   http_request(req, resp) -> err   req: 8 x u32 {method, method_len, url, url_len,
//                                    headers, headers_len, body, body_len}; headers are
//                                    "Name: value" lines. resp: 5 x u32 {status, handle,
//                                    headers_len, body_len, url_len}, written on success.
//   http_read(handle, part, buf, buf_len, nread) -> err
//                                    the next bytes of part 0 (body), 1 (headers as
//                                    "name: value\r\n" lines) or 2 (final URL), at most
//                                    buf_len and Limits::kMaxHttpChunkBytes; 0 at the end.
//   http_close(handle) -> err
//   http_error(buf, buf_len, len) -> err
//                                    the last failure's message (cut to buf_len; *len is
//                                    its whole length).
#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "execution/host_call.h"
#include "execution/host_context.h"
#include "execution/net/http_backend.h"
#include "execution/net/secret_store.h"
#include "execution/runtime.h"

namespace moat {
namespace {

// Error codes of the moat host API (the guest header has the same list).
enum : uint32_t {
  kOk = 0,
  kDeniedErr = 1,   // the policy refused it (URL, method, address, secret)
  kLimitErr = 2,    // a size, count, rate or time limit
  kInvalidErr = 3,  // a malformed request (URL, header, method)
  kNetErr = 4,      // the network failed (DNS, connection, TLS...)
  kBadHandle = 5,
  kFault = 6,        // a pointer or length outside guest memory
  kUnavailable = 7,  // this host has no network support
};

uint32_t Fail(HostContext& h, uint32_t code, std::string message) {
  h.http->last_error = std::move(message);
  return code;
}

uint32_t CodeOf(ErrorCode c) {
  switch (c) {
    case ErrorCode::kDenied: return kDeniedErr;
    case ErrorCode::kLimit: return kLimitErr;
    case ErrorCode::kInvalidArgument: return kInvalidErr;
    default: return kNetErr;
  }
}

HttpState& State(HostContext& h) {
  if (!h.http) h.http = std::make_unique<HttpState>();
  return *h.http;
}

// "Name: value" lines, split at '\n' (a '\r' before it is dropped). Blank lines are
// skipped; a line without a colon is an error.
bool ParseHeaders(std::string_view block, net::Headers* out, std::string* why) {
  while (!block.empty()) {
    size_t nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *why = "header line without \"Name:\"";
      return false;
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    out->emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return true;
}

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// What the run report shows of a request: method and URL, cut, with no secret value.
std::string Subject(const HostContext& h, std::string_view method, std::string_view url) {
  std::string s = std::string(method.substr(0, 16)) + " " + std::string(url.substr(0, 300));
  if (url.size() > 300) s += "...";
  return net::Redact(std::move(s), h.request->network.secrets);
}

uint32_t HttpRequest(HostContext& h, uint32_t req_ptr, uint32_t resp_ptr) {
  HttpState& st = State(h);
  GuestMemory mem = h.memory();
  // One bounds check for the whole struct: per-field pointer arithmetic could wrap.
  auto fields = mem.Span(req_ptr, 32);
  if (!fields) return Fail(h, kFault, "the request struct is outside memory");
  uint32_t f[8];
  memcpy(f, fields->data(), sizeof f);
  if (!mem.Span(resp_ptr, 20)) return Fail(h, kFault, "the response struct is outside memory");
  const Limits& limits = h.request->limits;
  const NetworkGrant& grant = h.request->network;
  uint64_t total = uint64_t{f[1]} + f[3] + f[5] + f[7];
  if (total > limits.max_http_request_bytes) {
    h.Deny("http_request", std::to_string(total) + " bytes", "request larger than the limit");
    return Fail(h, kLimitErr,
                "request of " + std::to_string(total) + " bytes exceeds the limit of " +
                    std::to_string(limits.max_http_request_bytes));
  }
  auto method = mem.String(f[0], f[1]);
  auto url = mem.String(f[2], f[3]);
  auto head = mem.String(f[4], f[5]);
  auto body = mem.String(f[6], f[7]);
  if (!method || !url || !head || !body) {
    return Fail(h, kFault, "a request field is outside memory");
  }
  ChargeFuel(h, total / kBytesPerFuel);
  std::string subject = Subject(h, *method, *url);
  if (!grant.any()) {
    h.Deny("http_request", subject, "no network access is granted");
    return Fail(h, kDeniedErr, "no network access is granted to this run");
  }
  if (st.requests >= limits.max_http_requests) {
    h.Deny("http_request", subject, "request count limit reached");
    return Fail(
        h, kLimitErr,
        "limit of " + std::to_string(limits.max_http_requests) + " requests per run reached");
  }
  if (st.bytes_sent + total > limits.max_http_sent_bytes) {
    h.Deny("http_request", subject, "request byte limit of the run reached");
    return Fail(h, kLimitErr,
                "limit of " + std::to_string(limits.max_http_sent_bytes) +
                    " request bytes per run reached");
  }
  if (st.bytes_received >= limits.max_http_total_bytes) {
    h.Deny("http_request", subject, "response byte limit of the run reached");
    return Fail(h, kLimitErr,
                "limit of " + std::to_string(limits.max_http_total_bytes) +
                    " response bytes per run reached");
  }
  if (st.open.size() >= Limits::kMaxOpenHttpResponses) {
    return Fail(h, kLimitErr,
                "more than " + std::to_string(Limits::kMaxOpenHttpResponses) +
                    " responses open (close one with http_close)");
  }
  if (grant.rate && !grant.rate->TryTake(NowNs())) {
    h.Deny("http_request", subject, "rate limit reached");
    return Fail(h, kLimitErr,
                "rate limit of " + std::to_string(grant.rate->per_minute()) +
                    " requests per minute for this tool reached");
  }
  net::HttpRequest request;
  request.method = std::string(*method);
  request.url = std::string(*url);
  request.body = std::string(*body);
  std::string why;
  if (!ParseHeaders(*head, &request.headers, &why)) return Fail(h, kInvalidErr, why);

  if (!st.backend) st.backend = h.http_backend;
  if (!st.backend) {
    auto loaded = net::LoadHttpBackendPlugin();
    if (!loaded) {
      return Fail(h, kUnavailable, "network support is not available: " + loaded.error().message);
    }
    st.backend = *loaded;
  }
  net::HttpLimits hl;
  hl.max_request_bytes = limits.max_http_request_bytes;
  hl.max_response_bytes =
      std::min(limits.max_http_response_bytes, limits.max_http_total_bytes - st.bytes_received);
  hl.timeout_us = limits.http_timeout_us;
  hl.ca_file = grant.ca_file;
  const std::atomic<bool>* cancel = h.request->cancel ? h.request->cancel->flag() : nullptr;
  ++st.requests;
  st.bytes_sent += total;
  net::FetchReport report;
  auto r = st.backend->Fetch(grant, request, hl, h.deadline_ns, cancel, &report);
  if (!r) {
    uint32_t code = CodeOf(r.error().code);
    if (code == kDeniedErr || code == kLimitErr) {
      h.Deny("http_request", subject, r.error().message);
    }
    return Fail(h, code, r.error().message);
  }
  for (const std::string& name : report.redacted) {
    h.Deny("http_response", subject, "the value of secret " + name + " was redacted");
  }
  st.bytes_received += r->body.size();
  HttpState::Response resp;
  resp.parts[0] = std::move(r->body);
  for (const auto& [k, v] : r->headers) resp.parts[1] += k + ": " + v + "\r\n";
  resp.parts[2] = std::move(r->url);
  uint32_t handle = st.next_handle++;
  uint32_t out[5] = {
      static_cast<uint32_t>(r->status), handle, static_cast<uint32_t>(resp.parts[1].size()),
      static_cast<uint32_t>(resp.parts[0].size()), static_cast<uint32_t>(resp.parts[2].size())};
  if (!mem.WriteBytes(resp_ptr, out, sizeof out)) return Fail(h, kFault, "response struct");
  st.open.emplace(handle, std::move(resp));
  return kOk;
}

uint32_t HttpRead(HostContext& h, uint32_t handle, uint32_t part, uint32_t buf, uint32_t len,
                  uint32_t nread_ptr) {
  HttpState& st = State(h);
  auto it = st.open.find(handle);
  if (it == st.open.end()) return Fail(h, kBadHandle, "no open response with that handle");
  if (part > 2) return Fail(h, kInvalidErr, "part must be 0 (body), 1 (headers) or 2 (URL)");
  GuestMemory mem = h.memory();
  if (!mem.Span(nread_ptr, 4)) return Fail(h, kFault, "nread is outside memory");
  const std::string& data = it->second.parts[part];
  size_t& pos = it->second.pos[part];
  uint32_t n =
      static_cast<uint32_t>(std::min<size_t>({data.size() - pos, len, Limits::kMaxHttpChunkBytes}));
  if (!mem.WriteBytes(buf, data.data() + pos, n)) return Fail(h, kFault, "buffer outside memory");
  pos += n;
  ChargeFuel(h, n / kBytesPerFuel);
  mem.Write<uint32_t>(nread_ptr, n);
  return kOk;
}

uint32_t HttpClose(HostContext& h, uint32_t handle) {
  HttpState& st = State(h);
  if (st.open.erase(handle) == 0) return Fail(h, kBadHandle, "no open response with that handle");
  return kOk;
}

uint32_t HttpError(HostContext& h, uint32_t buf, uint32_t len, uint32_t len_ptr) {
  HttpState& st = State(h);
  GuestMemory mem = h.memory();
  const std::string& m = st.last_error;
  uint32_t n = static_cast<uint32_t>(std::min<size_t>(m.size(), len));
  if (!mem.Span(len_ptr, 4) || !mem.WriteBytes(buf, m.data(), n)) return kFault;
  mem.Write<uint32_t>(len_ptr, static_cast<uint32_t>(m.size()));
  return kOk;
}

}  // namespace

bool RateLimiter::TryTake(uint64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (per_minute_ == 0) return false;
  if (last_ns_ != 0 && now_ns > last_ns_) {
    double refill = static_cast<double>(now_ns - last_ns_) * per_minute_ / 60e9;
    tokens_ = std::min<double>(per_minute_, tokens_ + refill);
  }
  last_ns_ = now_ns;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

}  // namespace moat

using u32 = uint32_t;

extern "C" {

u32 Z_moatZ_http_request(void* p, u32 req, u32 resp) {
  return moat::HostCall(p, moat::kNetErr,
                        [&](moat::HostContext& h) { return moat::HttpRequest(h, req, resp); });
}
u32 Z_moatZ_http_read(void* p, u32 handle, u32 part, u32 buf, u32 len, u32 nread) {
  return moat::HostCall(p, moat::kNetErr, [&](moat::HostContext& h) {
    return moat::HttpRead(h, handle, part, buf, len, nread);
  });
}
u32 Z_moatZ_http_close(void* p, u32 handle) {
  return moat::HostCall(p, moat::kNetErr,
                        [&](moat::HostContext& h) { return moat::HttpClose(h, handle); });
}
u32 Z_moatZ_http_error(void* p, u32 buf, u32 len, u32 len_ptr) {
  return moat::HostCall(p, moat::kNetErr, [&](moat::HostContext& h) {
    return moat::HttpError(h, buf, len, len_ptr);
  });
}

}  // extern "C"

namespace moat::rt {
// Referenced by the engine so the linker keeps this object in every binary.
int MoatHostLinked() { return 1; }
}  // namespace moat::rt
