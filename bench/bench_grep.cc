// The grep tool against GNU grep on a generated ~50 MB tree of C-like sources: the tool
// runs in process through the engine (instantiation included), GNU grep as a process
// (`LC_ALL=C grep -rnE PATTERN DIR > /dev/null`, fork+exec included), interleaved, in the
// same run. Both must find the same lines.
//   build/bench/bench_grep [--quick]
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "execution/engine.h"

extern char** environ;

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

// --- The tree ------------------------------------------------------------------------------

// xorshift64*: the same tree on every run.
struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  template <class T, size_t N>
  const T& Pick(const T (&a)[N]) {
    return a[Below(N)];
  }
};

const char* const kTypes[] = {"int",          "size_t",          "uint32_t", "char *",
                              "const char *", "struct buffer *", "double",   "bool",
                              "void *",       "ssize_t"};
const char* const kWords[] = {"buffer", "length", "count",  "index",  "offset", "result", "status",
                              "node",   "entry",  "table",  "cursor", "limit",  "flags",  "state",
                              "parser", "token",  "value",  "slot",   "chunk",  "header", "page",
                              "cache",  "queue",  "stream", "socket", "frame",  "block"};
const char* const kVerbs[] = {"read", "write", "parse", "find", "insert", "remove",
                              "init", "free",  "check", "copy", "update", "lookup"};
const char* const kComments[] = {
    "/* Keep the invariant: the cursor never passes the limit. */",
    "// The caller owns the buffer; we only borrow it for the duration of the call.",
    "/* Fast path: nothing to do when the table is empty. */",
    "// See the comment above for why this cannot overflow.",
    "/* Errors are returned, never printed, so callers decide. */"};

std::string Ident(Rng& r) {
  return std::string(r.Pick(kVerbs)) + "_" + r.Pick(kWords) + (r.Below(3) == 0 ? "_locked" : "");
}

// One function of 10-40 lines. About one line in 2,500 carries `FIXME(name)`, the target
// of the main pattern.
void Function(Rng& r, std::string* out, size_t* fixmes) {
  std::string name = Ident(r);
  *out += "static " + std::string(r.Pick(kTypes)) + " " + name + "(struct " + r.Pick(kWords) +
          " *self, size_t " + r.Pick(kWords) + ") {\n";
  size_t n = 8 + r.Below(32);
  for (size_t i = 0; i < n; ++i) {
    std::string a = r.Pick(kWords), b = r.Pick(kWords);
    switch (r.Below(9)) {
      case 0: *out += "  " + std::string(r.Pick(kComments)) + "\n"; break;
      case 1:
        *out += "  if (self->" + a + " >= self->" + b + ") return -" +
                std::to_string(1 + r.Below(40)) + ";\n";
        break;
      case 2:
        *out += "  for (size_t i = 0; i < self->" + a + "; ++i) self->" + b + "[i] = 0;\n";
        break;
      case 3:
        *out += "  " + std::string(r.Pick(kTypes)) + " " + a + " = " + Ident(r) + "(self, " + b +
                ");\n";
        break;
      case 4: *out += "  self->" + a + " += " + std::to_string(r.Below(100000)) + ";\n"; break;
      case 5: *out += "  memcpy(self->" + a + ", " + b + ", sizeof *self->" + a + ");\n"; break;
      case 6: *out += "\n"; break;
      case 7:
        *out += "  assert(" + a + " != NULL && \"" + b + " must be set before " + name + "\");\n";
        break;
      default: *out += "  return " + Ident(r) + "(self->" + a + ", " + b + ");\n"; break;
    }
    if (r.Below(2500) == 0) {
      *out += "  // FIXME(" + std::string(r.Pick(kWords)) + "): " + r.Pick(kVerbs) + " the " +
              r.Pick(kWords) + " only once\n";
      ++*fixmes;
    }
  }
  *out += "}\n\n";
}

void WriteFile(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("create " + path);
  if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    Die("write " + path);
  }
  close(fd);
}

// dirs x files of 4-28 KB each; returns the bytes written.
size_t MakeTree(const std::string& root, int dirs, int files, size_t* fixmes) {
  Rng r;
  size_t bytes = 0;
  mkdir(root.c_str(), 0755);
  char name[64];
  for (int d = 0; d < dirs; ++d) {
    snprintf(name, sizeof name, "/mod%02d", d);
    std::string dir = root + name;
    mkdir(dir.c_str(), 0755);
    for (int f = 0; f < files; ++f) {
      std::string text =
          "#include <stddef.h>\n#include \"" + std::string(r.Pick(kWords)) + ".h\"\n\n";
      size_t target = 4096 + r.Below(24 * 1024);
      while (text.size() < target) Function(r, &text, fixmes);
      snprintf(name, sizeof name, "/%s_%03d.%s", r.Pick(kWords), f, f % 4 == 0 ? "h" : "c");
      WriteFile(dir + name, text);
      bytes += text.size();
    }
  }
  return bytes;
}

// --- Running both --------------------------------------------------------------------------

// GNU grep as a process, stdout to /dev/null or captured.
double SpawnMs(const std::vector<std::string>& args, std::string* out) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_s = {"LC_ALL=C", "PATH=/usr/bin:/bin"};
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  int p[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe");
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data()) != 0) {
    Die("cannot start " + args[0]);
  }
  if (out) {
    close(p[1]);
    out->clear();
    char buf[65536];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
    close(p[0]);
  }
  int st;
  waitpid(pid, &st, 0);
  double ms = Ms(Clock::now() - t0);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) > 1) Die(args[0] + " failed");
  return ms;
}

struct Case {
  const char* label;
  json args;                     // for the tool
  std::vector<std::string> gnu;  // the GNU grep command, without the directory
  bool target;                   // checked against the 3x goal
};

// One tool run; the matches as "file:line" in *found.
double ToolMs(const moat::Engine& e, const moat::ModuleHandle& m, const moat::ExecRequest& req,
              std::set<std::string>* found, size_t* count) {
  auto t0 = Clock::now();
  moat::ExecResult r = e.Run(m, req);
  double ms = Ms(Clock::now() - t0);
  if (r.status != moat::RunStatus::kOk || r.exit_code != 0) {
    Die("grep tool: status " + std::to_string(static_cast<int>(r.status)) + ": " + r.message +
        r.stderr_bytes);
  }
  json out = json::parse(r.stdout_bytes, nullptr, false);
  if (out.is_discarded() || !out.value("ok", false)) Die("grep tool: " + r.stdout_bytes);
  const json& c = out["content"];
  if (c["truncated"].get<bool>()) Die("grep tool: truncated; raise max_matches");
  *count = c["count"].get<size_t>();
  if (found) {
    found->clear();
    for (const auto& mt : c["matches"]) {
      found->insert(mt["file"].get<std::string>() + ":" +
                    std::to_string(mt["line"].get<uint64_t>()) + ":" +
                    mt["text"].get<std::string>());
    }
  }
  return ms;
}

// GNU grep's "DIR/file:line:text" lines as "file:line:text".
std::set<std::string> GnuMatches(const std::string& text, const std::string& dir) {
  std::set<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string l = text.substr(i, j - i);
    if (l.compare(0, dir.size() + 1, dir + "/") == 0) l.erase(0, dir.size() + 1);
    out.insert(l);
    i = j + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int reps = quick ? 3 : 7;
  auto engine_r = moat::Engine::Create({});
  if (!engine_r) Die(engine_r.error().message);
  moat::Engine& engine = **engine_r;
  auto mod = engine.LoadFile(std::string(MOAT_TOOLS_DIR) + "/grep.wasm");
  if (!mod) Die("load grep.wasm: " + mod.error().message);

  char tmpl[] = "/tmp/moat-bench-grep-XXXXXX";
  if (!mkdtemp(tmpl)) Die("mkdtemp");
  const std::string tmp = tmpl, tree = tmp + "/src";
  auto t0 = Clock::now();
  size_t fixmes = 0;
  size_t bytes = MakeTree(tree, 60, 55, &fixmes);
  sync();
  printf("moat grep tool vs GNU grep%s\n", quick ? " (quick)" : "");
  printf("tree: 60 dirs x 55 files, %.1f MB of C-like text (made in %.0f ms), %zu FIXME lines\n",
         static_cast<double>(bytes) / 1e6, Ms(Clock::now() - t0), fixmes);
  printf(
      "tool: in process through the engine, instantiation included; GNU grep: LC_ALL=C,\n"
      "fork+exec included, output to /dev/null; %d interleaved repetitions\n\n",
      reps);

  const Case cases[] = {
      {"ERE with a literal: FIXME\\([a-z]+\\)",
       {{"pattern", "FIXME\\([a-z]+\\)"}},
       {"grep", "-rnE", "FIXME\\([a-z]+\\)"},
       true},
      {"fixed string: \"self->queue; ++i) self->slot[i]\" (regex false)",
       {{"pattern", "self->queue; ++i) self->slot[i]"}, {"regex", false}},
       {"grep", "-rnF", "self->queue; ++i) self->slot[i]"},
       false},
      {"ERE starting with a class: [a-z]+_cache_locked\\(self, slot\\)",
       {{"pattern", "[a-z]+_cache_locked\\(self, slot\\)"}},
       {"grep", "-rnE", "[a-z]+_cache_locked\\(self, slot\\)"},
       false},
      {"ignore_case ERE: fixme\\(cache\\)",
       {{"pattern", "fixme\\(cache\\)"}, {"ignore_case", true}},
       {"grep", "-rniE", "fixme\\(cache\\)"},
       false},
  };

  for (const Case& c : cases) {
    moat::ExecRequest req;
    req.argv = {"grep"};
    req.mounts.push_back({tree, "/workspace", true});
    json args = c.args;
    args["max_matches"] = 1000;
    args["max_line_bytes"] = 4096;
    req.stdin_bytes = args.dump();
    req.limits.fuel = moat::Limits::kMaxFuel;
    req.limits.timeout_us = 600'000'000;
    req.limits.max_output_bytes = 256u << 20;

    // Warm up both, and check they find the same lines.
    std::set<std::string> ours;
    size_t count = 0;
    ToolMs(engine, *mod, req, &ours, &count);
    std::vector<std::string> gnu = c.gnu;
    gnu.push_back(tree);
    std::string gnu_out;
    SpawnMs(gnu, &gnu_out);
    std::set<std::string> theirs = GnuMatches(gnu_out, tree);
    if (count > 1000) Die(std::string(c.label) + ": too many matches for one call");
    if (ours != theirs) {
      std::vector<std::string> only_ours, only_theirs;
      std::set_difference(ours.begin(), ours.end(), theirs.begin(), theirs.end(),
                          std::back_inserter(only_ours));
      std::set_difference(theirs.begin(), theirs.end(), ours.begin(), ours.end(),
                          std::back_inserter(only_theirs));
      Die(std::string(c.label) + ": results differ: tool " + std::to_string(ours.size()) +
          ", GNU grep " + std::to_string(theirs.size()) +
          "; first only in the tool: " + (only_ours.empty() ? "-" : only_ours[0]) +
          "; first only in GNU grep: " + (only_theirs.empty() ? "-" : only_theirs[0]));
    }

    std::vector<double> tool, grep;
    for (int i = 0; i < reps; ++i) {
      tool.push_back(ToolMs(engine, *mod, req, nullptr, &count));
      grep.push_back(SpawnMs(gnu, nullptr));
    }
    double tm = Percentile(tool, 0), gm = Percentile(grep, 0);
    printf("%s: %zu matching lines, same as GNU grep\n", c.label, count);
    printf("    grep tool (wasm)  min %8.1f ms  median %8.1f ms  (%.0f MB/s)\n", tm,
           Percentile(tool, 0.5), static_cast<double>(bytes) / 1e3 / tm);
    printf("    GNU grep          min %8.1f ms  median %8.1f ms  (%.0f MB/s)\n", gm,
           Percentile(grep, 0.5), static_cast<double>(bytes) / 1e3 / gm);
    char detail[96];
    snprintf(detail, sizeof detail, "%.2fx by the minimums, %.2fx by the medians", tm / gm,
             Percentile(tool, 0.5) / Percentile(grep, 0.5));
    if (c.target) {
      Check("grep tool within 3x of GNU grep", tm / gm <= 3.0, detail);
    } else {
      printf("    ratio %s (informational)\n", detail);
    }
    printf("\n");
  }

  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  printf("%s\n", g_misses ? "SOME TARGETS MISSED" : "all targets met");
  return g_misses ? 1 : 0;
}
