// Shared helpers for tests: guest paths, one engine per test binary, running guests.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "execution/engine.h"

namespace moat::test {

inline std::string Guest(const std::string& name) {
  return std::string(MOAT_GUEST_DIR) + "/" + name + ".wasm";
}

inline std::vector<uint8_t> GuestBytes(const std::string& name) {
  auto b = ReadFile(Guest(name), 64 << 20);
  return b ? *b : std::vector<uint8_t>{};
}

// One engine shared by the tests of a binary (modules stay loaded across tests).
inline Engine& SharedEngine() {
  static std::unique_ptr<Engine> engine = [] {
    auto e = Engine::Create({});
    if (!e) {
      fprintf(stderr, "engine: %s\n", e.error().message.c_str());
      abort();
    }
    return std::move(*e);
  }();
  return *engine;
}

inline ModuleHandle LoadGuest(const std::string& name) {
  auto h = SharedEngine().LoadFile(Guest(name));
  if (!h) {
    fprintf(stderr, "load %s: %s\n", name.c_str(), h.error().message.c_str());
    abort();
  }
  return *h;
}

inline ExecResult RunGuest(const std::string& name, ExecRequest req = {}) {
  ModuleHandle h = LoadGuest(name);
  if (req.argv.empty()) req.argv = {name + ".wasm"};
  return SharedEngine().Run(h, req);
}

inline int CountDir(const std::string& path) {
  int n = 0;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n;
}

inline long StatusField(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

inline std::string TempDir(const std::string& tag) {
  std::string d = "/tmp/moat-test-" + tag + "-" + std::to_string(getpid());
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  return d;
}

struct CliResult {
  int status = -1;
  std::string out, err;
  double ms = 0;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs a shell command line with stdout and stderr captured.
inline CliResult Shell(const std::string& command) {
  static int n = 0;
  std::string base = "/tmp/moat-cli-" + std::to_string(getpid()) + "-" + std::to_string(n++);
  std::string cmd = command + " >" + base + ".out 2>" + base + ".err";
  auto t0 = std::chrono::steady_clock::now();
  int rc = system(cmd.c_str());
  CliResult r;
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = Slurp(base + ".out");
  r.err = Slurp(base + ".err");
  unlink((base + ".out").c_str());
  unlink((base + ".err").c_str());
  return r;
}

// Runs `[prefix |] [env ENV] moat ARGS` through the shell; `env` holds env(1)'s arguments
// ("-u VAR NAME=value ..."), so a run can see other user folders than the test's own.
inline CliResult Cli(const std::string& args, const std::string& stdin_prefix = "",
                     const std::string& env = "") {
  return Shell((stdin_prefix.empty() ? std::string("</dev/null ") : stdin_prefix + " | ") +
               (env.empty() ? "" : "env " + env + " ") + MOAT_BINARY + " " + args);
}

// `moat ARGS` killed after `seconds` if still running (status 124 then), so a hang fails
// the test instead of stalling it.
inline CliResult CliWithin(int seconds, const std::string& args) {
  CliResult r =
      Shell("</dev/null timeout -s KILL " + std::to_string(seconds) + " " MOAT_BINARY " " + args);
  if (r.status == 137 || r.status == -1) r.status = 124;
  return r;
}

// Runs `moat ARGS` on a pseudo-terminal (stdin and /dev/tty are the terminal), giving
// each answer once the screen shows its marker, in order; returns what the terminal
// showed, with the terminal's own \r before each \n taken out. Every marker must come.
inline CliResult OnTerminal(const std::vector<std::string>& args,
                            const std::vector<std::pair<std::string, std::string>>& answers) {
  CliResult r;
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return r;
  if (pid == 0) {
    std::vector<char*> argv;
    std::string name = "moat";
    argv.push_back(name.data());
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MOAT_BINARY, argv.data());
    _exit(127);
  }
  size_t next = 0, seen_to = 0;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 100) < 0) break;
    if (p.revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO: the program ended
      r.out.append(buf, static_cast<size_t>(n));
    }
    if (next < answers.size()) {
      size_t at = r.out.find(answers[next].first, seen_to);
      if (at != std::string::npos) {
        const std::string& a = answers[next].second;
        EXPECT_EQ(write(master, a.data(), a.size()), static_cast<ssize_t>(a.size()));
        seen_to = at + answers[next].first.size();
        ++next;
      }
    }
  }
  close(master);
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) != pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  EXPECT_EQ(next, answers.size()) << "not every question came:\n" << r.out;
  for (size_t at; (at = r.out.find("\r\n")) != std::string::npos;) r.out.erase(at, 1);
  return r;
}

// Writes `content` to `path`, making its folders.
inline void PutFile(const std::string& path, const std::string& content) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// Runs `moat ARGS` (already split, no shell) with `env` added, waits until its standard
// output shows `marker`, sends `signo`, and returns how it ended: `status` is the exit
// status (-1 when it did not exit by itself within `grace_ms` of the signal, and was
// killed), `ms` the time from the signal to its end. `out` is everything it printed.
inline CliResult InterruptCli(const std::vector<std::string>& args, const std::string& marker,
                              int signo = SIGINT, int grace_ms = 5000,
                              const std::vector<std::string>& env = {}) {
  CliResult r;
  int out[2];
  if (pipe(out) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 2);
    close(out[0]);
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string name = "moat";
    argv.push_back(name.data());
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MOAT_BINARY, argv.data());
    _exit(127);
  }
  close(out[1]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  auto drain = [&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  };
  auto start = std::chrono::steady_clock::now();
  while (r.out.find(marker) == std::string::npos &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
    drain();
    usleep(10'000);
  }
  auto sent = std::chrono::steady_clock::now();
  kill(pid, signo);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() - sent < std::chrono::milliseconds(grace_ms)) {
    drain();
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    usleep(5'000);
  }
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count();
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  drain();
  close(out[0]);
  r.status = exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Where `s` holds something a terminal could act on, or "" when it holds none: a C0
// control other than \n and \t, DEL, a C1 control (raw or as UTF-8), a bidi control
// (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) or bytes that are not UTF-8.
// `allowed` (e.g. "\x1b[0m", written by moat itself) is skipped wherever it occurs.
inline std::string RawControlAt(const std::string& s, const std::string& allowed = "") {
  auto at = [&](size_t i, const char* what) {  // with its surroundings, printable
    std::string ctx;
    for (char ch : s.substr(i >= 20 ? i - 20 : 0, 40)) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(ch));
      ctx += ch >= 0x20 && ch < 0x7f ? std::string(1, ch) : std::string(buf);
    }
    return std::string(what) + " at byte " + std::to_string(i) + ": ..." + ctx + "...";
  };
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    if (!allowed.empty() && s.compare(i, allowed.size(), allowed) == 0) {
      i += allowed.size();
      continue;
    }
    unsigned char c = p[i];
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return at(i, "control");
      ++i;
      continue;
    }
    size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || i + len > n) return at(i, "not UTF-8");
    uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return at(i, "not UTF-8");
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return at(i, "not UTF-8");
    }
    if (cp <= 0x9F) return at(i, "C1 control");
    if (cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
        (cp >= 0x2066 && cp <= 0x2069)) {
      return at(i, "bidi control");
    }
    i += len;
  }
  return "";
}

}  // namespace moat::test
