#include "orchestration/agent/wire.h"

#include "base/json_text.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

Error Bad(const std::string& m) { return MakeError(ErrorCode::kInvalidArgument, m); }

const json* Field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}
std::string Str(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}
uint64_t Count(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_number_unsigned() ? f->get<uint64_t>() : 0;
}

// A usage count the provider reported: a missing or null one leaves `*out` and `*seen` as
// they were (the provider estimates it); a count that is not a non-negative integer
// (negative, fractional, text) is an error, never read as 0.
Status UsageCount(const json& usage, const char* key, uint64_t* out, bool* seen) {
  const json* f = Field(usage, key);
  if (f == nullptr || f->is_null()) return OkStatus();
  if (!f->is_number_unsigned()) {
    return Bad(std::string("an invalid usage count ") + key + ": " + DumpJson(*f).substr(0, 40) +
               " (expected a count of tokens)");
  }
  *out = f->get<uint64_t>();
  *seen = true;
  return OkStatus();
}

// A sum that stops at the largest count instead of wrapping.
uint64_t SatAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// The JSON text of tool arguments as an object for formats that want one.
json ArgumentsObject(const std::string& text) {
  auto j = ParseJson(text);
  return j && j->is_object() ? std::move(*j) : json::object();
}

std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

Error TextTooLarge() {
  return MakeError(ErrorCode::kLimit,
                   "the turn's text is larger than " + MiB(kMaxTurnTextBytes) + " (the limit)");
}
Error CallsTooLarge() {
  return MakeError(ErrorCode::kLimit,
                   "the turn's tool calls (ids, names and arguments) are "
                   "larger than " +
                       MiB(kMaxToolCallBytesPerTurn) + " (the limit)");
}

std::string Shown(std::string_view s) {
  std::string out(s.substr(0, 120));
  if (s.size() > 120) out += "...";
  return out;
}

// The JSON object a stream event holds, or why it holds none.
Result<json> EventObject(const SseEvent& e) {
  auto j = ParseJson(e.data);
  if (!j) return Bad("malformed stream event (" + j.error().message + "): " + Shown(e.data));
  if (!j->is_object()) return Bad("malformed stream event (not a JSON object): " + Shown(e.data));
  return j;
}

}  // namespace

// --- SSE ---------------------------------------------------------------------------

Status SseParser::Feed(std::string_view bytes,
                       const std::function<Status(const SseEvent&)>& on_event) {
  if (bytes.size() > kMaxStreamBytes - total_) {
    total_ = kMaxStreamBytes;
    return MakeError(ErrorCode::kLimit,
                     "the stream is larger than " + MiB(kMaxStreamBytes) + " (the limit)");
  }
  total_ += bytes.size();
  for (char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\n' || c == '\r') {
      skip_lf_ = c == '\r';
      std::string line;
      line.swap(line_);
      if (auto s = Line(line, on_event); !s) return s;
      continue;
    }
    if (line_.size() + current_.data.size() >= kMaxEventBytes) {
      return Bad("stream event larger than " + std::to_string(kMaxEventBytes) + " bytes");
    }
    line_ += c;
  }
  return OkStatus();
}

Status SseParser::Finish(const std::function<Status(const SseEvent&)>& on_event) {
  if (!line_.empty()) {
    std::string line;
    line.swap(line_);
    if (auto s = Line(line, on_event); !s) return s;
  }
  return Line("", on_event);
}

Status SseParser::Line(std::string_view line,
                       const std::function<Status(const SseEvent&)>& on_event) {
  if (line.empty()) {
    if (!has_data_) {
      current_ = {};
      return OkStatus();
    }
    SseEvent e = std::move(current_);
    current_ = {};
    has_data_ = false;
    return on_event(e);
  }
  if (line[0] == ':') return OkStatus();  // a comment (keep-alive)
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) current_.data += '\n';
    current_.data += value;
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  }
  return OkStatus();
}

// --- OpenAI-compatible ----------------------------------------------------------------

json OpenAiRequestBody(const ModelRequest& r) {
  json messages = json::array();
  for (const Message& m : r.messages) {
    switch (m.role) {
      case Message::Role::kSystem:
        messages.push_back({{"role", "system"}, {"content", m.content}});
        break;
      case Message::Role::kUser:
        messages.push_back({{"role", "user"}, {"content", m.content}});
        break;
      case Message::Role::kAssistant: {
        json a = {{"role", "assistant"}, {"content", m.content}};
        if (!m.tool_calls.empty()) {
          json calls = json::array();
          for (const ToolCall& c : m.tool_calls) {
            calls.push_back({{"id", c.id},
                             {"type", "function"},
                             {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
          }
          a["tool_calls"] = calls;
        }
        messages.push_back(a);
        break;
      }
      case Message::Role::kTool:
        messages.push_back(
            {{"role", "tool"}, {"tool_call_id", m.tool_call_id}, {"content", m.content}});
        break;
    }
  }
  json body = {{"model", r.model},
               {"messages", messages},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (!r.tools.empty()) {
    json tools = json::array();
    for (const ToolSpec& t : r.tools) {
      tools.push_back(
          {{"type", "function"},
           {"function",
            {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}}}});
    }
    body["tools"] = tools;
  }
  return body;
}

Status OpenAiStream::AddText(const std::string& t, const TextSink& on_text) {
  if (t.size() > kMaxTurnTextBytes - turn_.text.size()) return TextTooLarge();
  turn_.text += t;
  if (on_text && !t.empty()) on_text(t);
  return OkStatus();
}

Status OpenAiStream::OnEvent(const SseEvent& e, const TextSink& on_text) {
  if (done_) return OkStatus();  // anything after [DONE] is ignored
  if (e.data == "[DONE]") {
    done_ = true;
    return OkStatus();
  }
  auto event = EventObject(e);
  if (!event) return event.error();
  json j = std::move(*event);
  if (const json* err = Field(j, "error")) {
    std::string m = err->is_object() ? Str(*err, "message") : DumpJson(*err);
    return MakeError(ErrorCode::kIo, "the provider reported an error: " + Shown(m));
  }
  if (const json* u = Field(j, "usage"); u != nullptr && u->is_object()) {
    Usage& use = turn_.usage;
    if (auto s = UsageCount(*u, "prompt_tokens", &use.input_tokens, &use.input_reported); !s) {
      return s;
    }
    if (auto s = UsageCount(*u, "completion_tokens", &use.output_tokens, &use.output_reported);
        !s) {
      return s;
    }
  }
  const json* choices = Field(j, "choices");
  if (choices == nullptr || !choices->is_array()) return OkStatus();
  for (const json& c : *choices) {
    if (Count(c, "index") != 0) continue;  // one choice asked for
    if (const json* fr = Field(c, "finish_reason"); fr != nullptr && fr->is_string()) {
      turn_.stop_reason = fr->get<std::string>();
      finished_ = true;
    }
    const json* delta = Field(c, "delta");
    if (delta == nullptr || !delta->is_object()) continue;
    if (const json* text = Field(*delta, "content"); text != nullptr && text->is_string()) {
      if (auto s = AddText(text->get_ref<const std::string&>(), on_text); !s) return s;
    }
    const json* calls = Field(*delta, "tool_calls");
    if (calls == nullptr) continue;
    if (!calls->is_array()) return Bad("malformed stream event: tool_calls is not an array");
    for (const json& tc : *calls) {
      const json* idx = Field(tc, "index");
      if (idx == nullptr || !idx->is_number_unsigned()) {
        return Bad("malformed stream event: a tool-call delta without an index");
      }
      uint64_t i = idx->get<uint64_t>();
      if (i >= kMaxToolCallsPerTurn) return Bad("more than 128 tool calls in one turn");
      Partial& p = calls_[i];
      std::string id = Str(tc, "id");
      const json* f = Field(tc, "function");
      std::string name = f != nullptr ? Str(*f, "name") : "";
      std::string arguments = f != nullptr ? Str(*f, "arguments") : "";
      size_t added = id.size() + name.size() + arguments.size();
      if (added > kMaxToolCallBytesPerTurn - call_bytes_) return CallsTooLarge();
      call_bytes_ += added;
      if (!id.empty()) p.id = std::move(id);
      if (f != nullptr && f->is_object()) {
        p.name += name;
        p.arguments += arguments;
        if (p.arguments.size() > kMaxToolArgumentBytes) {
          return Bad("tool-call arguments larger than 1 MiB");
        }
      }
    }
  }
  return OkStatus();
}

Result<ModelTurn> OpenAiStream::Finish() {
  if (!done_ && !finished_)
    return MakeError(ErrorCode::kIo, "the stream ended before the turn did");
  ModelTurn t = turn_;
  for (auto& [i, p] : calls_) {
    if (p.name.empty()) return Bad("a streamed tool call has no name");
    t.tool_calls.push_back({p.id.empty() ? "call_" + std::to_string(i) : p.id, p.name,
                            p.arguments.empty() ? "{}" : p.arguments});
  }
  if (t.stop_reason.empty()) t.stop_reason = t.tool_calls.empty() ? "stop" : "tool_calls";
  return t;
}

// --- Anthropic ------------------------------------------------------------------------

json AnthropicRequestBody(const ModelRequest& r, uint32_t max_tokens) {
  json messages = json::array();
  std::string system;
  auto append_user_block = [&](json block) {
    // Consecutive tool results (and a prompt after them) share one user message.
    if (!messages.empty() && messages.back()["role"] == "user" &&
        messages.back()["content"].is_array()) {
      messages.back()["content"].push_back(std::move(block));
    } else {
      messages.push_back({{"role", "user"}, {"content", json::array({std::move(block)})}});
    }
  };
  for (const Message& m : r.messages) {
    switch (m.role) {
      case Message::Role::kSystem: system += (system.empty() ? "" : "\n\n") + m.content; break;
      case Message::Role::kUser: append_user_block({{"type", "text"}, {"text", m.content}}); break;
      case Message::Role::kAssistant: {
        json content = json::array();
        if (!m.content.empty()) content.push_back({{"type", "text"}, {"text", m.content}});
        for (const ToolCall& c : m.tool_calls) {
          content.push_back({{"type", "tool_use"},
                             {"id", c.id},
                             {"name", c.name},
                             {"input", ArgumentsObject(c.arguments)}});
        }
        if (content.empty()) content.push_back({{"type", "text"}, {"text", ""}});
        messages.push_back({{"role", "assistant"}, {"content", content}});
        break;
      }
      case Message::Role::kTool:
        append_user_block(
            {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.content}});
        break;
    }
  }
  json body = {
      {"model", r.model}, {"max_tokens", max_tokens}, {"messages", messages}, {"stream", true}};
  if (!system.empty()) body["system"] = system;
  if (!r.tools.empty()) {
    json tools = json::array();
    for (const ToolSpec& t : r.tools) {
      tools.push_back(
          {{"name", t.name}, {"description", t.description}, {"input_schema", t.parameters}});
    }
    body["tools"] = tools;
  }
  return body;
}

Status AnthropicStream::AddText(const std::string& t, const TextSink& on_text) {
  if (t.size() > kMaxTurnTextBytes - turn_.text.size()) return TextTooLarge();
  turn_.text += t;
  if (on_text && !t.empty()) on_text(t);
  return OkStatus();
}

Status AnthropicStream::OnEvent(const SseEvent& e, const TextSink& on_text) {
  if (stopped_) return OkStatus();
  auto event = EventObject(e);
  if (!event) return event.error();
  json j = std::move(*event);
  std::string type = Str(j, "type");
  if (type.empty()) type = e.event;
  if (type == "error") {
    const json* err = Field(j, "error");
    std::string m = err != nullptr ? Str(*err, "type") + ": " + Str(*err, "message") : e.data;
    return MakeError(ErrorCode::kIo, "the provider reported an error: " + Shown(m));
  }
  if (type == "ping") return OkStatus();
  if (type == "message_start") {
    started_ = true;
    if (const json* msg = Field(j, "message")) {
      if (const json* u = Field(*msg, "usage")) {
        if (auto s = AnthropicUsage(*u); !s) return s;
      }
    }
    return OkStatus();
  }
  if (!started_) return Bad("stream event \"" + Shown(type) + "\" before message_start");
  if (type == "content_block_start") {
    const json* idx = Field(j, "index");
    const json* block = Field(j, "content_block");
    if (idx == nullptr || !idx->is_number_unsigned() || block == nullptr || !block->is_object()) {
      return Bad("malformed content_block_start");
    }
    if (blocks_.size() >= kMaxToolCallsPerTurn * 2) return Bad("too many content blocks");
    Block b;
    b.type = Str(*block, "type");
    b.id = Str(*block, "id");
    b.name = Str(*block, "name");
    if (b.id.size() + b.name.size() > kMaxToolCallBytesPerTurn - call_bytes_) {
      return CallsTooLarge();
    }
    call_bytes_ += b.id.size() + b.name.size();
    if (b.type == "text") {
      if (auto s = AddText(Str(*block, "text"), on_text); !s) return s;
    }
    blocks_[idx->get<uint64_t>()] = b;
    return OkStatus();
  }
  if (type == "content_block_delta") {
    const json* idx = Field(j, "index");
    const json* delta = Field(j, "delta");
    if (idx == nullptr || !idx->is_number_unsigned() || delta == nullptr) {
      return Bad("malformed content_block_delta");
    }
    auto it = blocks_.find(idx->get<uint64_t>());
    if (it == blocks_.end()) return Bad("a delta for a content block that was not started");
    std::string dtype = Str(*delta, "type");
    if (dtype == "text_delta") {
      if (auto s = AddText(Str(*delta, "text"), on_text); !s) return s;
    } else if (dtype == "input_json_delta") {
      std::string part = Str(*delta, "partial_json");
      if (part.size() > kMaxToolCallBytesPerTurn - call_bytes_) return CallsTooLarge();
      call_bytes_ += part.size();
      it->second.json += part;
      if (it->second.json.size() > kMaxToolArgumentBytes) {
        return Bad("tool-call arguments larger than 1 MiB");
      }
    }
    return OkStatus();
  }
  if (type == "message_delta") {
    if (const json* d = Field(j, "delta")) {
      if (std::string r = Str(*d, "stop_reason"); !r.empty()) turn_.stop_reason = r;
    }
    if (const json* u = Field(j, "usage")) {
      if (auto s = AnthropicUsage(*u); !s) return s;
    }
    return OkStatus();
  }
  if (type == "message_stop") {
    stopped_ = true;
    return OkStatus();
  }
  return OkStatus();  // content_block_stop and event types added later
}

Status AnthropicStream::AnthropicUsage(const json& u) {
  // Cached input is input too: read and written cache tokens are added to it, each at the
  // full input price, so caching never makes a turn look cheaper than it may be.
  Usage& use = turn_.usage;
  uint64_t input = 0;
  bool input_seen = false;
  for (const char* key :
       {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}) {
    uint64_t n = 0;
    if (auto s = UsageCount(u, key, &n, &input_seen); !s) return s;
    input = SatAdd(input, n);
  }
  if (input_seen) {
    use.input_tokens = input;
    use.input_reported = true;
  }
  return UsageCount(u, "output_tokens", &use.output_tokens, &use.output_reported);
}

Result<ModelTurn> AnthropicStream::Finish() {
  if (!stopped_) return MakeError(ErrorCode::kIo, "the stream ended before message_stop");
  ModelTurn t = turn_;
  for (const auto& [i, b] : blocks_) {
    if (b.type != "tool_use") continue;
    if (b.name.empty()) return Bad("a tool_use block has no name");
    t.tool_calls.push_back({b.id, b.name, b.json.empty() ? "{}" : b.json});
  }
  if (t.stop_reason.empty()) t.stop_reason = t.tool_calls.empty() ? "end_turn" : "tool_use";
  return t;
}

}  // namespace moat::agent
