#include "execution/net/http_stream.h"

#include <curl/curl.h>
#include <time.h>

#include <mutex>

namespace moat::net {
namespace {

uint64_t NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

struct Transfer {
  const std::function<bool(int, std::string_view)>* on_body = nullptr;
  CURL* easy = nullptr;
  Headers* headers = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  uint64_t last_byte_us = 0;
  uint64_t idle_us = 0;
  uint64_t max_received = 0;  // 0: no limit
  bool stopped = false, cancelled = false, idle = false, too_large = false;
};

// Whether the body received so far (still encoded) is past the limit.
bool TooLarge(Transfer* t) {
  if (t->max_received == 0) return false;
  curl_off_t received = 0;
  curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &received);
  if (received >= 0 && static_cast<uint64_t>(received) > t->max_received) t->too_large = true;
  return t->too_large;
}

size_t OnBody(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  t->last_byte_us = NowUs();
  if (TooLarge(t)) return 0;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (!(*t->on_body)(static_cast<int>(status), std::string_view(p, size * n))) {
    t->stopped = true;
    return 0;
  }
  return size * n;
}

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line(p, size * n);
  t->last_byte_us = NowUs();
  if (t->headers == nullptr) return size * n;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {
    t->headers->clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || t->headers->size() >= 200) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  t->headers->emplace_back(name, std::string(v.substr(0, 8192)));
  return size * n;
}

int OnProgress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(ud);
  if (TooLarge(t)) return 1;
  if (t->cancel != nullptr && t->cancel->load(std::memory_order_relaxed)) {
    t->cancelled = true;
    return 1;
  }
  if (NowUs() - t->last_byte_us > t->idle_us) {
    t->idle = true;
    return 1;
  }
  return 0;
}

class CurlStreaming : public StreamingHttp {
 public:
  Result<int> Post(const StreamRequest& r,
                   const std::function<bool(int, std::string_view)>& on_body, Headers* headers,
                   const std::atomic<bool>* cancel) override {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    CURL* h = curl_easy_init();
    if (h == nullptr) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
    Transfer t;
    t.on_body = &on_body;
    t.easy = h;
    t.headers = headers;
    t.cancel = cancel;
    t.last_byte_us = NowUs();
    t.idle_us = r.idle_timeout_us;
    t.max_received = r.max_received_bytes;
    curl_slist* list = nullptr;
    for (const auto& [k, v] : r.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "moat");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout_us / 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(r.total_timeout_us / 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (!r.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, r.ca_file.c_str());
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
    if (t.cancelled) return MakeError(ErrorCode::kLimit, "cancelled");
    if (t.too_large) {
      return MakeError(ErrorCode::kLimit, std::string(kResponseTooLarge) +
                                              std::to_string(r.max_received_bytes >> 20) +
                                              " MiB as received (the limit)");
    }
    if (t.idle) {
      return MakeError(ErrorCode::kLimit,
                       "no data for " + std::to_string(r.idle_timeout_us / 1000000) + " s");
    }
    if (t.stopped) return static_cast<int>(status);
    if (rc == CURLE_OPERATION_TIMEDOUT) return MakeError(ErrorCode::kLimit, "request timed out");
    if (rc != CURLE_OK) {
      return MakeError(ErrorCode::kIo,
                       std::string("request to the provider failed: ") + curl_easy_strerror(rc));
    }
    return static_cast<int>(status);
  }
};

}  // namespace

std::shared_ptr<StreamingHttp> MakeStreamingHttp() { return std::make_shared<CurlStreaming>(); }

}  // namespace moat::net
