// A provider that replays model turns from a script: the offline default that makes the
// demo and the tests run without a network or a key.
//
//   {"model": "scripted",
//    "turns": [
//      {"text": "Let me read the notes.",
//       "tool_calls": [{"name": "read_file", "arguments": {"path": "notes.md"}}]},
//      {"text": "Done.", "usage": {"input_tokens": 900, "output_tokens": 40}}]}
//
// Turn N answers the N-th request, whatever the tool results were. "arguments" may be an
// object or a string (passed on as written, so a script can send malformed JSON the way a
// model might). Without "usage", tokens are estimated at 4 bytes each. Text streams in
// small pieces, as a real provider's would.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "orchestration/agent/provider.h"

namespace moat::agent {

class ScriptedProvider : public Provider {
 public:
  // Every problem is kInvalidArgument naming the turn and field.
  static Result<std::unique_ptr<ScriptedProvider>> Parse(std::string_view json_text);
  static Result<std::unique_ptr<ScriptedProvider>> Load(const std::string& path);
  // The built-in demo (docs: README "The agent").
  static std::unique_ptr<ScriptedProvider> Demo();

  std::string name() const override { return "scripted"; }
  Result<ModelTurn> Complete(const ModelRequest& request,
                             const std::function<void(std::string_view)>& on_text,
                             const CancelToken* cancel) override;
  const std::string& model() const { return model_; }

 private:
  std::mutex mu_;
  std::string model_ = "scripted";
  std::vector<ModelTurn> turns_;
  std::vector<bool> has_usage_;
  size_t next_ = 0;
};

// The script behind ScriptedProvider::Demo().
std::string_view DemoScript();

}  // namespace moat::agent
