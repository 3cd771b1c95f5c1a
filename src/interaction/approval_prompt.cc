#include "interaction/approval_prompt.h"

#include <vector>

#include "base/json_text.h"
#include "base/terminal_text.h"

namespace moat {
namespace {

using nlohmann::json;

std::string List(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + TerminalCut(s, 200);
  return out;
}

const json* Property(const json& schema, const std::string& name) {
  if (!schema.is_object()) return nullptr;
  auto props = schema.find("properties");
  if (props == schema.end() || !props->is_object()) return nullptr;
  auto prop = props->find(name);
  return prop == props->end() ? nullptr : &*prop;
}

// True when the tool's schema bounds this argument to a short string (a path, a URL, a
// pattern): then it is shown whole.
bool BoundedString(const json* prop) {
  if (prop == nullptr || !prop->is_object()) return false;
  auto max = prop->find("maxLength");
  return max != prop->end() && max->is_number_unsigned() &&
         max->get<uint64_t>() <= kPromptWholeChars;
}

}  // namespace

std::string ApprovalPrompt(const agent::ApprovalRequest& r) {
  const tools::ToolManifest& m = r.tool->manifest;
  const tools::ToolCapabilities& caps = m.capabilities;
  std::string what = std::string(tools::FsAccessName(caps.filesystem)) + " files";
  if (!caps.network.empty()) what += "; network " + List(caps.network);
  if (!caps.secrets.empty()) what += "; secrets " + List(caps.secrets);
  // Whatever state the terminal was left in, the prompt starts from plain attributes.
  std::string out = "\x1b[0m\n  ? allow " + TerminalCut(m.name, 200) + " (" + what + ")";
  // Asked because the session took in untrusted content: what, and when.
  if (!r.reason.empty()) {
    out += "\n    ! asked because " + TerminalCut(r.reason, kPromptWholeShownBytes);
  }

  auto parsed = ParseJson(r.arguments);
  json args = parsed ? std::move(*parsed) : json();
  if (!args.is_object()) {
    out += "\n      arguments (not a JSON object): " + TerminalCut(r.arguments, kPromptCutBytes);
  } else {
    // The arguments the tool's schema names come first, those shown whole before those
    // cut, so what the call acts on comes right after the tool's name; then any others
    // (up to kPromptMaxArguments of them; the count of the rest is shown).
    std::vector<std::string> groups[4];  // named whole, named cut, other whole, other cut
    for (const auto& [key, value] : args.items()) {
      const json* prop = Property(m.arguments, key);
      std::string text = TerminalJson(value);  // JSON escapes for what is escaped
      bool whole = (value.is_string() && BoundedString(prop)) || text.size() <= kPromptCutBytes;
      std::string line = "\n      " + TerminalCut(key, 200) + ": " +
                         TerminalCut(text, whole ? kPromptWholeShownBytes : kPromptCutBytes);
      groups[(prop != nullptr ? 0 : 2) + (whole ? 0 : 1)].push_back(std::move(line));
    }
    size_t shown = 0, others = 0;
    for (int g = 0; g < 4; ++g) {
      for (const std::string& line : groups[g]) {
        ++shown;
        if (g >= 2 && others++ >= kPromptMaxArguments) continue;
        out += line;
      }
    }
    if (others > kPromptMaxArguments) {
      out += "\n      \xE2\x80\xA6 (" + GroupDigits(others - kPromptMaxArguments) +
             " more arguments the tool does not name)";
    }
    if (shown == 0) out += "\n      (no arguments)";
  }
  out += "\n    [y] once  [a] always this session  [n] no > ";
  return out;
}

}  // namespace moat
