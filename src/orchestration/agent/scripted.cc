#include "orchestration/agent/scripted.h"

#include "base/fs.h"
#include "base/json_text.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

Error Bad(const std::string& m) { return MakeError(ErrorCode::kInvalidArgument, "script: " + m); }

constexpr size_t kMaxScriptBytes = 16u << 20;

}  // namespace

Result<std::unique_ptr<ScriptedProvider>> ScriptedProvider::Parse(std::string_view text) {
  if (text.size() > kMaxScriptBytes) return Bad("larger than 16 MiB");
  auto parsed = ParseJson(text);
  if (!parsed) return Bad(parsed.error().message);
  json j = std::move(*parsed);
  if (!j.is_object()) return Bad("must be an object with \"turns\"");
  auto p = std::unique_ptr<ScriptedProvider>(new ScriptedProvider());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "model") {
      if (!it->is_string()) return Bad("\"model\" must be a string");
      p->model_ = it->get<std::string>();
    } else if (it.key() != "turns") {
      return Bad("unknown field \"" + it.key() + "\"");
    }
  }
  auto turns = j.find("turns");
  if (turns == j.end() || !turns->is_array() || turns->empty()) {
    return Bad("\"turns\" must be a non-empty array");
  }
  for (size_t i = 0; i < turns->size(); ++i) {
    const json& t = (*turns)[i];
    std::string where = "turns[" + std::to_string(i) + "]";
    if (!t.is_object()) return Bad(where + " must be an object");
    ModelTurn turn;
    bool usage = false;
    for (auto it = t.begin(); it != t.end(); ++it) {
      const std::string& k = it.key();
      if (k == "text") {
        if (!it->is_string()) return Bad(where + ".text must be a string");
        turn.text = it->get<std::string>();
      } else if (k == "tool_calls") {
        if (!it->is_array()) return Bad(where + ".tool_calls must be an array");
        for (size_t c = 0; c < it->size(); ++c) {
          const json& call = (*it)[c];
          std::string cw = where + ".tool_calls[" + std::to_string(c) + "]";
          if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) {
            return Bad(cw + " needs a string \"name\"");
          }
          ToolCall tc;
          tc.name = call["name"].get<std::string>();
          tc.id = call.contains("id") && call["id"].is_string()
                      ? call["id"].get<std::string>()
                      : "call_" + std::to_string(i + 1) + "_" + std::to_string(c + 1);
          auto a = call.find("arguments");
          if (a == call.end()) {
            tc.arguments = "{}";
          } else if (a->is_string()) {
            tc.arguments = a->get<std::string>();
          } else {
            tc.arguments = DumpJson(*a);
          }
          for (auto f = call.begin(); f != call.end(); ++f) {
            if (f.key() != "name" && f.key() != "id" && f.key() != "arguments") {
              return Bad(cw + ": unknown field \"" + f.key() + "\"");
            }
          }
          turn.tool_calls.push_back(std::move(tc));
        }
      } else if (k == "usage") {
        if (!it->is_object()) return Bad(where + ".usage must be an object");
        for (auto u = it->begin(); u != it->end(); ++u) {
          if (!u->is_number_unsigned())
            return Bad(where + ".usage." + u.key() + " must be a count");
          if (u.key() == "input_tokens") {
            turn.usage.input_tokens = u->get<uint64_t>();
          } else if (u.key() == "output_tokens") {
            turn.usage.output_tokens = u->get<uint64_t>();
          } else {
            return Bad(where + ".usage: unknown field \"" + u.key() + "\"");
          }
        }
        usage = true;
      } else {
        return Bad(where + ": unknown field \"" + k + "\"");
      }
    }
    turn.stop_reason = turn.tool_calls.empty() ? "end_turn" : "tool_use";
    p->turns_.push_back(std::move(turn));
    p->has_usage_.push_back(usage);
  }
  return p;
}

Result<std::unique_ptr<ScriptedProvider>> ScriptedProvider::Load(const std::string& path) {
  auto bytes = ReadFile(path, kMaxScriptBytes);
  if (!bytes) return bytes.error();
  return Parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
}

std::unique_ptr<ScriptedProvider> ScriptedProvider::Demo() {
  auto p = Parse(DemoScript());
  if (!p) abort();  // the built-in script is checked by the tests
  return std::move(*p);
}

Result<ModelTurn> ScriptedProvider::Complete(const ModelRequest& request,
                                             const std::function<void(std::string_view)>& on_text,
                                             const CancelToken* cancel) {
  ModelTurn turn;
  bool usage = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (next_ >= turns_.size()) {
      return MakeError(ErrorCode::kInvalidArgument, "the script has no turn " +
                                                        std::to_string(next_ + 1) + " (it has " +
                                                        std::to_string(turns_.size()) + ")");
    }
    turn = turns_[next_];
    usage = has_usage_[next_];
    ++next_;
  }
  for (size_t i = 0; i < turn.text.size(); i += 24) {
    if (cancel != nullptr && cancel->cancelled()) {
      return MakeError(ErrorCode::kLimit, "cancelled");
    }
    if (on_text) on_text(std::string_view(turn.text).substr(i, 24));
  }
  if (!usage) {
    uint64_t in = 0;
    for (const Message& m : request.messages) {
      in += m.content.size();
      for (const ToolCall& c : m.tool_calls) in += c.name.size() + c.arguments.size();
    }
    for (const ToolSpec& t : request.tools)
      in += t.description.size() + DumpJson(t.parameters).size();
    uint64_t out = turn.text.size();
    for (const ToolCall& c : turn.tool_calls) out += c.name.size() + c.arguments.size();
    turn.usage = {in / 4 + 1, out / 4 + 1};
  }
  return turn;
}

}  // namespace moat::agent
