// Shared helpers for the network tests: a resolver the test scripts, and waiting for a
// cpp-httplib server to run.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "execution/net/http_client.h"

namespace moat::net {

// Answers from a script: each name has a list of answers, one per lookup (the last one
// repeats); every lookup is counted.
class ScriptedResolver : public Resolver {
 public:
  void Set(const std::string& host, std::vector<std::vector<std::string>> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_[host] = std::move(answers);
    calls_[host] = 0;
  }
  int Calls(const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[host];
  }
  Result<std::vector<IpAddress>> Resolve(const std::string& host) override {
    std::lock_guard<std::mutex> lock(mu_);
    lookups_.push_back(host);
    auto it = answers_.find(host);
    if (it == answers_.end()) return MakeError(ErrorCode::kIo, "no such name: " + host);
    int n = calls_[host]++;
    const auto& list = it->second[std::min<size_t>(static_cast<size_t>(n), it->second.size() - 1)];
    std::vector<IpAddress> out;
    for (const auto& s : list) out.push_back(*IpAddress::Parse(s));
    return out;
  }

  // Every name looked up, known or not, in order.
  std::vector<std::string> Lookups() {
    std::lock_guard<std::mutex> lock(mu_);
    return lookups_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lookups_;
  std::map<std::string, std::vector<std::vector<std::string>>> answers_;
  std::map<std::string, int> calls_;
};

// Waits until the server's accept loop runs: stop() before that would be lost, and the
// loop would never end.
inline void WaitRunning(const httplib::Server& s) {
  for (int i = 0; i < 5000 && !s.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace moat::net
