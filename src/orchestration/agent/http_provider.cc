#include "orchestration/agent/http_provider.h"

#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <random>

#include "orchestration/agent/wire.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

bool Retryable(int status) {
  return status == 429 || status == 408 || (status >= 500 && status <= 599);
}

// The provider's own words for a failed request, when its body says.
std::string ErrorMessage(int status, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  std::string m;
  if (j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      m = e["message"].get<std::string>();
    } else if (e.is_string()) {
      m = e.get<std::string>();
    }
  }
  if (m.empty()) m = body.substr(0, 300);
  return "HTTP " + std::to_string(status) + (m.empty() ? "" : ": " + m);
}

// Sleeps in small steps so a cancellation is seen; false when cancelled.
bool SleepUs(uint64_t us, const CancelToken* cancel) {
  while (us > 0) {
    if (cancel != nullptr && cancel->cancelled()) return false;
    uint64_t step = std::min<uint64_t>(us, 50'000);
    timespec ts{static_cast<time_t>(step / 1'000'000), static_cast<long>(step % 1'000'000) * 1000};
    nanosleep(&ts, nullptr);
    us -= step;
  }
  return cancel == nullptr || !cancel->cancelled();
}

}  // namespace

Result<ModelTurn> HttpProvider::Complete(const ModelRequest& request,
                                         const std::function<void(std::string_view)>& on_text,
                                         const CancelToken* cancel) {
  bool openai = config_.kind == HttpProviderConfig::Kind::kOpenAi;
  net::StreamRequest q;
  q.url = config_.base_url + (openai ? "/chat/completions" : "/v1/messages");
  q.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  if (openai) {
    if (!config_.api_key.empty())
      q.headers.emplace_back("Authorization", "Bearer " + config_.api_key);
    q.body = OpenAiRequestBody(request).dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    q.headers.emplace_back("x-api-key", config_.api_key);
    q.headers.emplace_back("anthropic-version", "2023-06-01");
    q.body = AnthropicRequestBody(request, config_.max_tokens)
                 .dump(-1, ' ', false, json::error_handler_t::replace);
  }
  q.idle_timeout_us = config_.idle_timeout_us;
  q.total_timeout_us = config_.total_timeout_us;
  q.ca_file = config_.ca_file;
  std::mt19937_64 rng(static_cast<uint64_t>(time(nullptr)));
  uint64_t backoff = config_.backoff_us;
  const std::atomic<bool>* cancel_flag = cancel ? cancel->flag() : nullptr;
  Error last = MakeError(ErrorCode::kIo, "no attempt made");
  int attempts = std::max(1, config_.max_attempts);
  int made = 0;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    ++made;
    SseParser sse;
    OpenAiStream oa;
    AnthropicStream an;
    bool streamed = false;  // text reached the caller: a retry would repeat it
    Status stream_error = OkStatus();
    std::string error_body;
    auto on_event = [&](const SseEvent& e) -> Status {
      auto emit = [&](std::string_view t) {
        streamed = true;
        if (on_text) on_text(t);
      };
      return openai ? oa.OnEvent(e, emit) : an.OnEvent(e, emit);
    };
    net::Headers headers;
    auto status = http_->Post(
        q,
        [&](int code, std::string_view piece) {
          if (code != 200) {
            if (error_body.size() < 65536) error_body.append(piece.substr(0, 65536));
            return true;
          }
          stream_error = sse.Feed(piece, on_event);
          return stream_error.ok();
        },
        &headers, cancel_flag);
    if (cancel != nullptr && cancel->cancelled()) return MakeError(ErrorCode::kLimit, "cancelled");
    bool retry = false;
    if (!status) {
      last = status.error();
      retry = !streamed;  // a dropped connection or a timeout before any text
    } else if (*status != 200) {
      last = MakeError(ErrorCode::kIo, ErrorMessage(*status, error_body));
      retry = Retryable(*status);
      if (retry) {
        for (const auto& [k, v] : headers) {
          if (k == "retry-after") {
            uint64_t secs = strtoull(v.c_str(), nullptr, 10);
            backoff =
                std::max(backoff, std::min<uint64_t>(secs * 1'000'000, config_.max_backoff_us));
          }
        }
      }
    } else if (!stream_error.ok()) {
      return MakeError(stream_error.error().code,
                       "malformed stream from " + name() + ": " + stream_error.error().message);
    } else {
      if (auto s = sse.Finish(on_event); !s) {
        return MakeError(s.error().code,
                         "malformed stream from " + name() + ": " + s.error().message);
      }
      auto turn = openai ? oa.Finish() : an.Finish();
      if (turn) return turn;
      last = turn.error();
      retry = !streamed && turn.error().code == ErrorCode::kIo;  // cut short before any text
    }
    if (!retry || attempt == attempts) break;
    uint64_t jitter = backoff > 0 ? rng() % (backoff / 4 + 1) : 0;
    if (!SleepUs(std::min(backoff + jitter, config_.max_backoff_us), cancel)) {
      return MakeError(ErrorCode::kLimit, "cancelled");
    }
    backoff = std::min(backoff * 2, config_.max_backoff_us);
  }
  if (made > 1) last.message += " (after " + std::to_string(made) + " attempts)";
  return last;
}

}  // namespace moat::agent
