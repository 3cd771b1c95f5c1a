// `moat secrets set | ls | rm`: the user's secret store (src/execution/net/secret_store.h).
// A value is read from stdin, never from the command line (which other users can see in
// /proc), and never printed.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace moat {

class SecretCommands {
 public:
  explicit SecretCommands(CLI::App* app);
  ~SecretCommands();
  // After parsing: runs the secrets subcommand that was given and returns its exit
  // status, or -1 when none of them was.
  int Dispatch();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace moat
