// Undo of a session's checkpoints (orchestration/undo/undo.h) against a baseline measured
// in the same run, on the same filesystem:
//   undo:      Undo of one call that rewrote 1,000 files of 10 KB (each file checked
//              against its recorded digest, restored through a temp file and a rename,
//              one syncfs for all), the journal marked
//   baseline:  writing the same 1,000 files fresh (open, write, close), and the same with
//              one syncfs after them
//   build/bench/bench_undo [--quick] [--dir FOLDER]   (default /tmp: the filesystem matters)
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bench_util.h"
#include "orchestration/undo/checkpoints.h"
#include "orchestration/undo/undo.h"

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)
namespace fs = std::filesystem;

constexpr int kFiles = 1000;
constexpr size_t kFileBytes = 10 * 1024;

std::string Content(int i, char fill) {
  std::string s(kFileBytes, fill);
  std::string tag = std::to_string(i) + "\n";
  s.replace(0, tag.size(), tag);
  return s;
}

void Write(const std::string& path, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("cannot write " + path);
  if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    Die("short write to " + path);
  }
  close(fd);
}

std::string Name(int i) { return "src/f" + std::to_string(i) + ".txt"; }

// Seconds for Undo of one call that rewrote every file of `ws` (set up here, not timed).
double UndoSeconds(const std::string& ws, int round) {
  fs::remove_all(ws);
  fs::create_directories(ws + "/src");
  fs::create_directories(ws + "/.moat");
  for (int i = 0; i < kFiles; ++i) Write(ws + "/" + Name(i), Content(i, 'a'));
  std::string dir = ws + "/.moat/checkpoints/r" + std::to_string(round);
  auto store = moat::undo::CheckpointStore::Open(dir, {});
  if (!store) Die(store.error().message);
  auto rec = (*store)->BeginCall(1, "c1", "write_file");
  if (!rec) Die("no recorder");
  int src = open((ws + "/src").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int i = 0; i < kFiles; ++i) {
    std::string name = "f" + std::to_string(i) + ".txt";
    rec->Before(ws, Name(i), src, name, false);
    Write(ws + "/" + Name(i), Content(i, 'b'));
  }
  close(src);
  rec->Finish();
  rec.reset();  // the run ends: its checkpoints' lock is released
  store->reset();
  sync();  // the setup's own writes do not count against the undo
  moat::undo::UndoOptions o;
  o.workspace = ws;
  auto t0 = Clock::now();
  auto r = moat::undo::Undo(dir, o);
  double s = Ms(Clock::now() - t0) / 1000;
  if (!r) Die(r.error().message);
  if (r->refused || r->restored.size() != static_cast<size_t>(kFiles)) {
    Die("the undo did not restore every file");
  }
  return s;
}

// Seconds to write the same files fresh; with `sync`, then one syncfs.
double FreshSeconds(const std::string& ws, bool sync_after) {
  fs::remove_all(ws);
  fs::create_directories(ws + "/src");
  std::vector<std::string> contents;
  for (int i = 0; i < kFiles; ++i) contents.push_back(Content(i, 'a'));
  sync();
  auto t0 = Clock::now();
  for (int i = 0; i < kFiles; ++i) Write(ws + "/" + Name(i), contents[i]);
  if (sync_after) {
    int fd = open(ws.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) Die("syncfs failed");
    close(fd);
  }
  return Ms(Clock::now() - t0) / 1000;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string where = "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--dir" && i + 1 < argc) {
      where = argv[++i];
    } else {
      Die("usage: bench_undo [--quick] [--dir FOLDER]");
    }
  }
  std::string tmp = where + "/moat-bench-undo-" + std::to_string(getpid());
  int rounds = quick ? 1 : 5;
  printf("moat undo benchmark%s: %d files of %zu KB in %s, median of %d\n\n",
         quick ? " (quick)" : "", kFiles, kFileBytes / 1024, where.c_str(), rounds);
  std::vector<double> undo, fresh, fresh_sync;
  for (int r = 0; r < rounds; ++r) {
    fresh.push_back(FreshSeconds(tmp + "/fresh", false));
    fresh_sync.push_back(FreshSeconds(tmp + "/fresh", true));
    undo.push_back(UndoSeconds(tmp + "/ws", r));
  }
  double u = Percentile(undo, 0.5), f = Percentile(fresh, 0.5), fs_ = Percentile(fresh_sync, 0.5);
  printf("  %-52s %9.1f ms  (baseline)\n", "write the files fresh", f * 1000);
  printf("  %-52s %9.1f ms  (%.2fx the baseline)\n", "write the files fresh, then one syncfs",
         fs_ * 1000, fs_ / f);
  printf("  %-52s %9.1f ms  (%.2fx the baseline)\n", "Undo: check, restore, rename, mark", u * 1000,
         u / f);
  Check("Undo of 1,000 changed 10 KB files: <= 1 s", u <= 1.0,
        std::to_string(u * 1000).substr(0, 6) + " ms");
  fs::remove_all(tmp);
  printf("\n%s\n", g_misses == 0 ? "all targets met" : "some targets missed");
  return 0;
}
