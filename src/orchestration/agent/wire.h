// Provider wire formats, without the transport: the request bodies of OpenAI-compatible
// Chat Completions and Anthropic Messages, and incremental decoders of their streamed
// answers (server-sent events) into a ModelTurn. Bytes may arrive cut anywhere (inside a
// UTF-8 character, a JSON token, a line); nothing is decoded before its line is whole.
// Every malformed or truncated stream is an error naming what was wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "orchestration/agent/provider.h"

namespace moat::agent {

struct SseEvent {
  std::string event;  // "" when the event has no "event:" line
  std::string data;   // "data:" lines joined with '\n'
};

// Server-sent events (the WHATWG format): lines end with LF, CRLF or CR; "data:", "event:"
// fields; comments (":...") and other fields are skipped; a blank line ends an event.
class SseParser {
 public:
  static constexpr size_t kMaxEventBytes = 4u << 20;
  // Calls `on_event` for every complete event; an error for an event over the limit.
  Status Feed(std::string_view bytes, const std::function<Status(const SseEvent&)>& on_event);
  // The stream ended: an unterminated last event is dispatched (as browsers do not, but
  // servers that omit the final blank line exist).
  Status Finish(const std::function<Status(const SseEvent&)>& on_event);

 private:
  Status Line(std::string_view line, const std::function<Status(const SseEvent&)>& on_event);
  std::string line_;
  bool skip_lf_ = false;
  SseEvent current_;
  bool has_data_ = false;
};

using TextSink = std::function<void(std::string_view)>;

// OpenAI-compatible Chat Completions (OpenAI, Ollama, llama.cpp server, vLLM, OpenRouter).
nlohmann::json OpenAiRequestBody(const ModelRequest& request);
class OpenAiStream {
 public:
  Status OnEvent(const SseEvent& e, const TextSink& on_text);
  // After the transport ends: the turn, or why the stream was incomplete.
  Result<ModelTurn> Finish();

 private:
  struct Partial {
    std::string id, name, arguments;
  };
  ModelTurn turn_;
  std::map<uint64_t, Partial> calls_;  // by the stream's tool-call index
  bool done_ = false;
  bool finished_ = false;  // a finish_reason was seen
};

// Anthropic Messages.
nlohmann::json AnthropicRequestBody(const ModelRequest& request, uint32_t max_tokens);
class AnthropicStream {
 public:
  Status OnEvent(const SseEvent& e, const TextSink& on_text);
  Result<ModelTurn> Finish();

 private:
  struct Block {
    std::string type;  // "text", "tool_use", or another kind (ignored)
    std::string id, name, json;
  };
  ModelTurn turn_;
  std::map<uint64_t, Block> blocks_;
  bool started_ = false;
  bool stopped_ = false;
};

inline constexpr size_t kMaxToolCallsPerTurn = 128;
inline constexpr size_t kMaxToolArgumentBytes = 1u << 20;

}  // namespace moat::agent
