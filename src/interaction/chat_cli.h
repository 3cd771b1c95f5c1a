// `moat chat` (the agent loop from a terminal) and `moat audit verify`.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace moat {

class ChatCommands {
 public:
  explicit ChatCommands(CLI::App* app);
  ~ChatCommands();
  // After parsing: runs the chat or audit subcommand that was given and returns its exit
  // status, or -1 when neither was.
  int Dispatch();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace moat
