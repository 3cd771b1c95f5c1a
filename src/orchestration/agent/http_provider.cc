#include "orchestration/agent/http_provider.h"

#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <random>

#include "base/json_text.h"
#include "orchestration/agent/wire.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

bool Retryable(int status) {
  return status == 429 || status == 408 || (status >= 500 && status <= 599);
}

// The provider's own words for a failed request, when its body says.
std::string ErrorMessage(int status, const std::string& body) {
  auto parsed = ParseJson(body);
  json j = parsed ? std::move(*parsed) : json();
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

uint64_t MonotonicUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000ull + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// Counts the answer left out, estimated at 4 bytes a token from what was sent and received.
void EstimateMissingUsage(const std::string& request_body, ModelTurn* turn) {
  if (!turn->usage.input_reported) turn->usage.input_tokens = request_body.size() / 4 + 1;
  if (!turn->usage.output_reported) {
    uint64_t out = turn->text.size();
    for (const ToolCall& c : turn->tool_calls)
      out += c.id.size() + c.name.size() + c.arguments.size();
    turn->usage.output_tokens = out / 4 + 1;
  }
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
    q.body = DumpJson(OpenAiRequestBody(request));
  } else {
    q.headers.emplace_back("x-api-key", config_.api_key);
    q.headers.emplace_back("anthropic-version", "2023-06-01");
    uint32_t max_tokens = config_.max_tokens;
    if (request.max_output_tokens > 0 && request.max_output_tokens < max_tokens) {
      max_tokens = static_cast<uint32_t>(request.max_output_tokens);
    }
    q.body = DumpJson(AnthropicRequestBody(request, max_tokens));
  }
  q.ca_file = config_.ca_file;
  q.max_received_bytes = kMaxStreamReceivedBytes;
  // One deadline for the whole call, every attempt and wait included: the configured
  // timeout, or the time the caller has left when that is sooner.
  uint64_t budget_us = config_.total_timeout_us;
  if (request.timeout_us > 0) budget_us = std::min(budget_us, request.timeout_us);
  const uint64_t deadline = MonotonicUs() + budget_us;
  auto left_us = [&]() -> uint64_t {
    uint64_t now = MonotonicUs();
    return now >= deadline ? 0 : deadline - now;
  };
  auto out_of_time = [&] {
    return MakeError(ErrorCode::kLimit, "no answer within the time left (" +
                                            std::to_string(budget_us / 1000) + " ms)");
  };
  std::mt19937_64 rng(static_cast<uint64_t>(time(nullptr)));
  uint64_t backoff = config_.backoff_us;
  const std::atomic<bool>* cancel_flag = cancel ? cancel->flag() : nullptr;
  Error last = MakeError(ErrorCode::kIo, "no attempt made");
  int attempts = std::max(1, config_.max_attempts);
  int made = 0;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    uint64_t left = left_us();
    if (left < 1000) {
      last = out_of_time();
      break;
    }
    q.total_timeout_us = left;
    q.idle_timeout_us = std::min(config_.idle_timeout_us, left);
    q.connect_timeout_us = std::min(q.connect_timeout_us, left);
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
      // An answer past the size limit would only be as large again: not retried.
      if (last.message.rfind(net::kResponseTooLarge, 0) == 0) {
        return MakeError(ErrorCode::kLimit,
                         "the answer from " + name() + " is too large: " + last.message);
      }
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
    } else if (!stream_error.ok() && stream_error.error().code == ErrorCode::kLimit) {
      return MakeError(ErrorCode::kLimit, "the answer from " + name() +
                                              " is too large: " + stream_error.error().message);
    } else if (!stream_error.ok()) {
      return MakeError(stream_error.error().code,
                       "malformed stream from " + name() + ": " + stream_error.error().message);
    } else {
      if (auto s = sse.Finish(on_event); !s) {
        return MakeError(s.error().code,
                         "malformed stream from " + name() + ": " + s.error().message);
      }
      auto turn = openai ? oa.Finish() : an.Finish();
      if (turn) {
        EstimateMissingUsage(q.body, &*turn);
        return turn;
      }
      last = turn.error();
      retry = !streamed && turn.error().code == ErrorCode::kIo;  // cut short before any text
    }
    if (!retry || attempt == attempts) break;
    uint64_t jitter = backoff > 0 ? rng() % (backoff / 4 + 1) : 0;
    uint64_t wait = std::min(backoff + jitter, config_.max_backoff_us);
    if (wait >= left_us()) break;  // no time for another attempt
    if (!SleepUs(wait, cancel)) {
      return MakeError(ErrorCode::kLimit, "cancelled");
    }
    backoff = std::min(backoff * 2, config_.max_backoff_us);
  }
  if (made > 1) last.message += " (after " + std::to_string(made) + " attempts)";
  return last;
}

}  // namespace moat::agent
