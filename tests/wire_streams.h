// Streams as OpenAI-compatible and Anthropic servers send them, for the wire and
// provider tests.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace moat::agent {

using json = nlohmann::json;

inline std::string OpenAiChunk(const json& delta, const json& finish = nullptr) {
  json j = {{"id", "c1"},
            {"object", "chat.completion.chunk"},
            {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
  return "data: " + j.dump() + "\n\n";
}

inline const std::string kText =
    "Caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80 done";  // 2-, 3-, 4-byte chars

inline std::string OpenAiStreamBytes() {
  std::string s = OpenAiChunk({{"role", "assistant"}, {"content", ""}});
  s += OpenAiChunk({{"content", kText.substr(0, 5)}});  // cut after "Caf\xc3\xa9"
  s += OpenAiChunk({{"content", kText.substr(5)}});
  s += OpenAiChunk({{"tool_calls",
                     {{{"index", 0},
                       {"id", "call_a"},
                       {"type", "function"},
                       {"function", {{"name", "read_file"}, {"arguments", ""}}}}}}});
  s += OpenAiChunk({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "{\"pa"}}}}}}});
  s += OpenAiChunk({{"tool_calls",
                     {{{"index", 1},
                       {"id", "call_b"},
                       {"function", {{"name", "grep"}, {"arguments", "{\"pattern\":"}}}}}}});
  s += OpenAiChunk(
      {{"tool_calls", {{{"index", 0}, {"function", {{"arguments", "th\":\"a.txt\"}"}}}}}}});
  s += OpenAiChunk({{"tool_calls", {{{"index", 1}, {"function", {{"arguments", "\"x\"}"}}}}}}});
  s += OpenAiChunk(json::object(), "tool_calls");
  s += "data: " +
       json({{"choices", json::array()},
             {"usage", {{"prompt_tokens", 120}, {"completion_tokens", 33}}}})
           .dump() +
       "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

inline std::string AnthropicEvent(const std::string& type, json j) {
  j["type"] = type;
  return "event: " + type + "\ndata: " + j.dump() + "\n\n";
}

inline std::string AnthropicStreamBytes() {
  std::string s = AnthropicEvent(
      "message_start",
      {{"message", {{"id", "m1"}, {"usage", {{"input_tokens", 200}, {"output_tokens", 1}}}}}});
  s += AnthropicEvent("content_block_start",
                      {{"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}});
  s += AnthropicEvent("ping", json::object());
  s += AnthropicEvent(
      "content_block_delta",
      {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", kText.substr(0, 9)}}}});
  s += AnthropicEvent(
      "content_block_delta",
      {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", kText.substr(9)}}}});
  s += AnthropicEvent("content_block_stop", {{"index", 0}});
  s += AnthropicEvent("content_block_start", {{"index", 1},
                                              {"content_block",
                                               {{"type", "tool_use"},
                                                {"id", "toolu_1"},
                                                {"name", "read_file"},
                                                {"input", json::object()}}}});
  s += AnthropicEvent(
      "content_block_delta",
      {{"index", 1},
       {"delta", {{"type", "input_json_delta"}, {"partial_json", "{\"path\": \"a"}}}});
  s += AnthropicEvent(
      "content_block_delta",
      {{"index", 1}, {"delta", {{"type", "input_json_delta"}, {"partial_json", ".txt\"}"}}}});
  s += AnthropicEvent("content_block_stop", {{"index", 1}});
  s += AnthropicEvent("message_delta", {{"delta", {{"stop_reason", "tool_use"}}},
                                        {"usage", {{"output_tokens", 45}}}});
  s += AnthropicEvent("message_stop", json::object());
  return s;
}

}  // namespace moat::agent
