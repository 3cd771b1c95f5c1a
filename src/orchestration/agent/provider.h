// What the agent loop needs from a language model: one turn at a time, text streamed as it
// comes, tool calls at the end. Providers (scripted.h; the HTTP ones next) turn their wire
// formats into these types at their edge; nothing deeper sees provider JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "execution/exec.h"

namespace moat::agent {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text exactly as the model produced it (may be invalid)
};

struct Message {
  enum class Role { kSystem, kUser, kAssistant, kTool };
  Role role = Role::kUser;
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant turns
  std::string tool_call_id;          // tool results
  std::string tool_name;             // tool results
};

struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json parameters;  // JSON Schema of the arguments
};

struct Usage {
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  // Whether the provider's answer held each count (wire.h sets them); a count it left out
  // is estimated from the bytes sent and received, never taken as 0.
  bool input_reported = false;
  bool output_reported = false;
};

struct ModelRequest {
  std::string model;
  std::vector<Message> messages;
  std::vector<ToolSpec> tools;
  // What is left of the session's budgets, which bound the call: its time (every attempt
  // and wait included) and the output tokens asked for. 0: the provider's own.
  uint64_t timeout_us = 0;
  uint64_t max_output_tokens = 0;
};

struct ModelTurn {
  std::string text;
  std::vector<ToolCall> tool_calls;
  Usage usage;
  std::string stop_reason;  // "end_turn", "tool_use", "max_tokens", ...
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string name() const = 0;
  // One model turn. `on_text` gets text as it streams (may be empty). A provider retries
  // what is worth retrying itself; an error here ends the run with its message.
  virtual Result<ModelTurn> Complete(const ModelRequest& request,
                                     const std::function<void(std::string_view)>& on_text,
                                     const CancelToken* cancel) = 0;
};

}  // namespace moat::agent
