// WASI layer benchmarks. Per-call costs are (run with N calls - run with 0 calls) / N, so
// instantiation and libc start-up cancel out; the tree walk is compared with the same C
// program built natively, measured in the same run on the same machine.
//   build/bench/bench_wasi [--quick]
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "execution/engine.h"

extern char** environ;

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)

std::string Fmt(const char* f, double a, double b = 0) {
  char buf[160];
  snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

std::string Guest(const char* name) { return std::string(MOAT_GUEST_DIR) + "/" + name + ".wasm"; }

moat::ModuleHandle MustLoad(moat::Engine& e, const char* guest) {
  auto h = e.LoadFile(Guest(guest));
  if (!h) Die(std::string("load ") + guest + ": " + h.error().message);
  return *h;
}

// One run in process; returns microseconds, the guest's stdout in *out.
double RunUs(const moat::Engine& e, const moat::ModuleHandle& m, const moat::ExecRequest& req,
             std::string* out = nullptr) {
  auto t0 = Clock::now();
  moat::ExecResult r = e.Run(m, req);
  double us = Us(Clock::now() - t0);
  if (r.status != moat::RunStatus::kOk || r.exit_code != 0) {
    Die(req.argv[0] + ": status " + std::to_string(static_cast<int>(r.status)) + ", exit " +
        std::to_string(r.exit_code) + ": " + r.message + r.stderr_bytes);
  }
  if (out) *out = std::move(r.stdout_bytes);
  return us;
}

// fork+exec with stdout captured; returns microseconds including reading all output.
double SpawnUs(const std::vector<std::string>& args, std::string* out) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) Die("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) Die("posix_spawn");
  close(p[1]);
  out->clear();
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
  int st;
  waitpid(pid, &st, 0);
  double us = Us(Clock::now() - t0);
  close(p[0]);
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) Die(args[0] + " failed");
  return us;
}

// Per-call cost in microseconds, once per repetition: a run with `n` calls minus a run
// with none, interleaved so drift hits both alike.
std::vector<double> PerCall(const moat::Engine& e, const moat::ModuleHandle& m,
                            moat::ExecRequest req, size_t n_arg, long n, int reps,
                            size_t expect_out = SIZE_MAX) {
  std::vector<double> per;
  std::string out;
  for (int i = 0; i < reps; ++i) {
    req.argv[n_arg] = "0";
    double t0 = RunUs(e, m, req);
    req.argv[n_arg] = std::to_string(n);
    double tn = RunUs(e, m, req, &out);
    if (expect_out != SIZE_MAX && out.size() != expect_out) Die("unexpected output size");
    per.push_back((tn - t0) / static_cast<double>(n));
  }
  return per;
}

// The same for a host loop: `body` runs n times.
template <class F>
std::vector<double> NativePerCall(long n, int reps, F&& body) {
  std::vector<double> per;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    for (long k = 0; k < n; ++k) body();
    per.push_back(Us(Clock::now() - t0) / static_cast<double>(n));
  }
  return per;
}

void PrintPerCall(const char* label, const std::vector<double>& v) {
  printf("  %-44s min %7.3f us   median %7.3f us\n", label, Percentile(v, 0), Percentile(v, 0.5));
}

// Runs the guest's stdio on the process's own fds with fd 1 on /dev/null (FdSink).
class StdoutToDevNull {
 public:
  StdoutToDevNull() {
    fflush(stdout);
    saved_ = dup(1);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    dup2(null, 1);
    close(null);
  }
  ~StdoutToDevNull() {
    dup2(saved_, 1);
    close(saved_);
  }

 private:
  int saved_;
};

void WriteFile(const std::string& path, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("create " + path);
  std::string data(size, 'a');
  if (write(fd, data.data(), size) != static_cast<ssize_t>(size)) Die("write " + path);
  close(fd);
}

// dirs x files_per_dir files of 0..99 bytes under root; returns the expected walker output.
std::string MakeTree(const std::string& root, int dirs, int files_per_dir) {
  mkdir(root.c_str(), 0755);
  unsigned long long bytes = 0;
  char name[64];
  for (int d = 0; d < dirs; ++d) {
    snprintf(name, sizeof name, "/d%03d", d);
    std::string dir = root + name;
    mkdir(dir.c_str(), 0755);
    for (int f = 0; f < files_per_dir; ++f) {
      snprintf(name, sizeof name, "/f%03d.txt", f);
      size_t size = static_cast<size_t>((d * 31 + f * 7) % 100);
      WriteFile(dir + name, size);
      bytes += size;
    }
  }
  return "files=" + std::to_string(dirs * files_per_dir) + " dirs=" + std::to_string(dirs) +
         " bytes=" + std::to_string(bytes) + "\n";
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  auto engine_r = moat::Engine::Create({});
  if (!engine_r) Die(engine_r.error().message);
  moat::Engine& engine = **engine_r;
  int reps = quick ? 3 : 9;

  char tmpl[] = "/tmp/moat-bench-wasi-XXXXXX";
  if (!mkdtemp(tmpl)) Die("mkdtemp");
  const std::string tmp = tmpl;

  printf("moat WASI layer benchmarks%s\n", quick ? " (quick)" : "");
  printf("per call = (run with N calls - run with 0 calls) / N, %d repetitions\n\n", reps);

  // 1. fd_write of one byte to stdout.
  {
    moat::ModuleHandle m = MustLoad(engine, "bench_fd_write_loop");
    long n = quick ? 20'000 : 200'000;
    moat::ExecRequest req;
    req.argv = {"fd_write_loop", "0"};
    RunUs(engine, m, req);
    std::vector<double> captured = PerCall(engine, m, req, 1, n, reps, static_cast<size_t>(n));
    std::vector<double> inherited;
    {
      StdoutToDevNull redirect;
      req.inherit_stdio = true;
      inherited = PerCall(engine, m, req, 1, n, reps);
    }
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    const char byte = 'x';
    std::vector<double> native = NativePerCall(n, reps, [&] {
      if (write(null, &byte, 1) != 1) Die("write /dev/null");
    });
    close(null);
    printf("fd_write, 1 byte to fd 1, raw __wasi_fd_write (N = %ld)\n", n);
    PrintPerCall("wasm, stdout captured (CaptureSink)", captured);
    PrintPerCall("wasm, stdout inherited on /dev/null (FdSink)", inherited);
    PrintPerCall("native write(2) to /dev/null, reference", native);
    double c = Percentile(captured, 0.5);
    Check("fd_write to a discarding sink <= 1 us per call", c <= 1.0, Fmt("median %.3f us", c));
  }

  // 2. path_open + fd_close of an existing file in the preopen.
  {
    moat::ModuleHandle m = MustLoad(engine, "bench_open_close_loop");
    const std::string root = tmp + "/oc";
    mkdir(root.c_str(), 0755);
    mkdir((root + "/a").c_str(), 0755);
    mkdir((root + "/a/b").c_str(), 0755);
    WriteFile(root + "/file.txt", 10);
    WriteFile(root + "/a/b/file.txt", 10);
    long n = quick ? 5'000 : 50'000;
    moat::ExecRequest req;
    req.argv = {"open_close_loop", "0", "file.txt"};
    req.mounts.push_back({root, "/data", true});
    RunUs(engine, m, req);
    std::vector<double> flat = PerCall(engine, m, req, 1, n, reps);
    req.argv[2] = "a/b/file.txt";
    std::vector<double> deep = PerCall(engine, m, req, 1, n, reps);
    req.argv[2] = "file.txt";
    req.hidden.clear();
    std::vector<double> unhidden = PerCall(engine, m, req, 1, n, reps);
    int dfd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    std::vector<double> native = NativePerCall(n, reps, [&] {
      int fd = openat(dfd, "file.txt", O_RDONLY | O_CLOEXEC);
      if (fd < 0) Die("openat");
      close(fd);
    });
    close(dfd);
    printf("\npath_open + fd_close of an existing file (N = %ld)\n", n);
    PrintPerCall("wasm, \"file.txt\" in the preopen", flat);
    PrintPerCall("wasm, \"a/b/file.txt\"", deep);
    PrintPerCall("wasm, \"file.txt\", no hidden-path patterns", unhidden);
    PrintPerCall("native openat + close, reference", native);
    double f = Percentile(flat, 0.5);
    Check("path_open + fd_close <= 10 us", f <= 10.0, Fmt("median %.3f us", f));
  }

  // 3. Walking a 10,000-file tree, wasm vs the same C program native.
  {
    moat::ModuleHandle m = MustLoad(engine, "bench_tree_walk");
    const std::string tree = tmp + "/tree", empty = tmp + "/empty";
    auto t0 = Clock::now();
    const std::string expect = MakeTree(tree, 100, 100);
    mkdir(empty.c_str(), 0755);
    // Write the new inodes back now, so writeback does not run during the walks.
    sync();
    printf("\nwalking a tree of 100 dirs x 100 files (made in %.0f ms), readdir + stat\n",
           Us(Clock::now() - t0) / 1000);
    int walk_reps = quick ? 3 : 9;
    for (const char* mode : {"fstatat", "paths"}) {
      moat::ExecRequest req;
      req.argv = {"tree_walk", "/tree", mode};
      req.mounts.push_back({tree, "/tree", true});
      moat::ExecRequest req_empty = req;
      req_empty.mounts[0].host_path = empty;
      std::string out;
      RunUs(engine, m, req, &out);  // warm the page cache and the module
      if (out != expect) Die("wasm walker printed " + out + "expected " + expect);
      SpawnUs({MOAT_NATIVE_TREE_WALK, tree, mode}, &out);
      if (out != expect) Die("native walker printed " + out + "expected " + expect);
      // The default hidden-path patterns are checked for every listed and stat'ed name;
      // a run without them shows what that costs.
      moat::ExecRequest req_unhidden = req;
      req_unhidden.hidden.clear();
      std::vector<double> w, wu, we, nt, ne;
      for (int i = 0; i < walk_reps; ++i) {
        w.push_back(RunUs(engine, m, req, &out));
        if (out != expect) Die("wasm walker printed " + out);
        wu.push_back(RunUs(engine, m, req_unhidden, &out));
        if (out != expect) Die("wasm walker printed " + out);
        we.push_back(RunUs(engine, m, req_empty));
        nt.push_back(SpawnUs({MOAT_NATIVE_TREE_WALK, tree, mode}, &out));
        if (out != expect) Die("native walker printed " + out);
        ne.push_back(SpawnUs({MOAT_NATIVE_TREE_WALK, empty, mode}, &out));
      }
      // Walks are short and the machine is shared: minimums are the least disturbed runs.
      double wm = Percentile(w, 0), wem = Percentile(we, 0);
      double nm = Percentile(nt, 0), nem = Percentile(ne, 0);
      double ratio = (wm - wem) / (nm - nem);
      printf("  %s (%d interleaved runs; both print %.*s)\n",
             strcmp(mode, "fstatat") == 0 ? "fstatat(dirfd(d), name), openat for subdirectories"
                                          : "lstat(full path), opendir(full path)",
             walk_reps, static_cast<int>(expect.size() - 1), expect.c_str());
      printf("    wasm in-process   min %7.2f ms  median %7.2f ms  (empty tree min %.2f ms)\n",
             wm / 1000, Percentile(w, 0.5) / 1000, wem / 1000);
      printf("    native fork+exec  min %7.2f ms  median %7.2f ms  (empty tree min %.2f ms)\n",
             nm / 1000, Percentile(nt, 0.5) / 1000, nem / 1000);
      printf("    walk only (minus the empty-tree run): wasm %.2f ms, native %.2f ms\n",
             (wm - wem) / 1000, (nm - nem) / 1000);
      double wum = Percentile(wu, 0);
      printf(
          "    wasm without hidden-path patterns: min %.2f ms (the checks cost %.1f%% of the "
          "walk)\n",
          wum / 1000, (wm - wum) / (wm - wem) * 100);
      std::string what = std::string("tree walk (") + mode + ") within 2x of native, walk only";
      Check(what.c_str(), ratio <= 2.0, Fmt("%.2fx", ratio));
    }
  }

  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  printf("\n%s\n", g_misses ? "SOME TARGETS MISSED" : "all targets met");
  return g_misses ? 1 : 0;
}
