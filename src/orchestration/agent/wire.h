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
  // Calls `on_event` for every complete event; an error for an event over the limit, and
  // kLimit once more than kMaxStreamBytes have been fed in all.
  Status Feed(std::string_view bytes, const std::function<Status(const SseEvent&)>& on_event);
  // The stream ended: an unterminated last event is dispatched (as browsers do not, but
  // servers that omit the final blank line exist).
  Status Finish(const std::function<Status(const SseEvent&)>& on_event);

 private:
  Status Line(std::string_view line, const std::function<Status(const SseEvent&)>& on_event);
  uint64_t total_ = 0;  // bytes fed
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
  Status AddText(const std::string& t, const TextSink& on_text);
  ModelTurn turn_;
  std::map<uint64_t, Partial> calls_;  // by the stream's tool-call index
  size_t call_bytes_ = 0;              // ids, names and arguments received
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
  // The counts of a "usage" object (message_start, message_delta); each later one wins.
  Status AnthropicUsage(const nlohmann::json& usage);
  struct Block {
    std::string type;  // "text", "tool_use", or another kind (ignored)
    std::string id, name, json;
  };
  Status AddText(const std::string& t, const TextSink& on_text);
  ModelTurn turn_;
  std::map<uint64_t, Block> blocks_;
  size_t call_bytes_ = 0;  // ids, names and input JSON of tool_use blocks
  bool started_ = false;
  bool stopped_ = false;
};

// What one streamed answer (one model turn) may hold. Past any of these the answer is
// refused (kLimit naming the limit) and the transfer stops, so memory stays bounded
// whatever a provider sends.
inline constexpr size_t kMaxToolCallsPerTurn = 128;
inline constexpr size_t kMaxToolArgumentBytes = 1u << 20;  // one call's arguments
// Ids, names and arguments of all the tool calls of a turn, together.
inline constexpr size_t kMaxToolCallBytesPerTurn = 8u << 20;
inline constexpr size_t kMaxTurnTextBytes = 8u << 20;  // the turn's text
// The response body, decoded (events, comments and all), and as received (compressed).
inline constexpr uint64_t kMaxStreamBytes = 64ull << 20;
inline constexpr uint64_t kMaxStreamReceivedBytes = 64ull << 20;

}  // namespace moat::agent
