#include "orchestration/agent/wire.h"

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

// The JSON text of tool arguments as an object for formats that want one.
json ArgumentsObject(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::string Shown(std::string_view s) {
  std::string out(s.substr(0, 120));
  if (s.size() > 120) out += "...";
  return out;
}

}  // namespace

// --- SSE ---------------------------------------------------------------------------

Status SseParser::Feed(std::string_view bytes,
                       const std::function<Status(const SseEvent&)>& on_event) {
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

Status OpenAiStream::OnEvent(const SseEvent& e, const TextSink& on_text) {
  if (done_) return OkStatus();  // anything after [DONE] is ignored
  if (e.data == "[DONE]") {
    done_ = true;
    return OkStatus();
  }
  json j = json::parse(e.data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Bad("malformed stream event (not a JSON object): " + Shown(e.data));
  }
  if (const json* err = Field(j, "error")) {
    std::string m = err->is_object() ? Str(*err, "message") : err->dump();
    return MakeError(ErrorCode::kIo, "the provider reported an error: " + Shown(m));
  }
  if (const json* u = Field(j, "usage"); u != nullptr && u->is_object()) {
    turn_.usage.input_tokens = Count(*u, "prompt_tokens");
    turn_.usage.output_tokens = Count(*u, "completion_tokens");
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
      const std::string& t = text->get_ref<const std::string&>();
      turn_.text += t;
      if (on_text && !t.empty()) on_text(t);
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
      if (std::string id = Str(tc, "id"); !id.empty()) p.id = id;
      if (const json* f = Field(tc, "function"); f != nullptr && f->is_object()) {
        p.name += Str(*f, "name");
        p.arguments += Str(*f, "arguments");
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

Status AnthropicStream::OnEvent(const SseEvent& e, const TextSink& on_text) {
  if (stopped_) return OkStatus();
  json j = json::parse(e.data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Bad("malformed stream event (not a JSON object): " + Shown(e.data));
  }
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
        turn_.usage.input_tokens = Count(*u, "input_tokens");
        turn_.usage.output_tokens = Count(*u, "output_tokens");
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
    if (b.type == "text") {
      std::string t = Str(*block, "text");
      turn_.text += t;
      if (on_text && !t.empty()) on_text(t);
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
      std::string t = Str(*delta, "text");
      turn_.text += t;
      if (on_text && !t.empty()) on_text(t);
    } else if (dtype == "input_json_delta") {
      it->second.json += Str(*delta, "partial_json");
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
      if (Field(*u, "output_tokens")) turn_.usage.output_tokens = Count(*u, "output_tokens");
    }
    return OkStatus();
  }
  if (type == "message_stop") {
    stopped_ = true;
    return OkStatus();
  }
  return OkStatus();  // content_block_stop and event types added later
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
