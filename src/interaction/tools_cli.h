// `moat tools list | inspect | add | remove | pack | watch` and `moat call`.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace moat {

class ToolCommands {
 public:
  explicit ToolCommands(CLI::App* app);
  ~ToolCommands();
  // After parsing: runs the tools subcommand that was given and returns its exit
  // status, or -1 when none of them was.
  int Dispatch();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace moat
