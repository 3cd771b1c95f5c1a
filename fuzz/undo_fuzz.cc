// Fuzzes checkpoints and undo end to end: random sequences of path operations through the
// WASI layer (wasi::Fs) with a CallRecorder as its PreImageSink, on a real tree with files,
// folders, symlinks and a hidden file; then, when the call says it is undoable, an undo
// must succeed without a refusal and leave the tree exactly as it was before (contents,
// link texts, folders). A call that says it is not undoable is left alone.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "execution/wasi_fs.h"
#include "fs_fuzz_util.h"
#include "orchestration/undo/checkpoints.h"
#include "orchestration/undo/undo.h"

namespace fs = std::filesystem;
using namespace moat;  // NOLINT(google-build-using-namespace)
using moat::fuzz::Input;
using moat::fuzz::Put;
using moat::fuzz::Snapshot;

namespace {

fs::path g_root, g_ws, g_cp;

void ResetWorkspace() {
  std::error_code ec;
  fs::remove_all(g_ws, ec);
  fs::remove_all(g_cp, ec);
  Put(g_ws / "file", "inside");
  Put(g_ws / ".env", "HIDDEN");
  Put(g_ws / "sub" / "deep" / "f", "inside-deep");
  Put(g_ws / "sub" / "x", "x");
  fs::create_symlink("sub/deep", g_ws / "in");
  fs::create_symlink("loop", g_ws / "loop");
  fs::create_symlink(".env", g_ws / "envlink");
}

void Fail(const std::string& what) {
  fprintf(stderr, "INVARIANT BROKEN: %s\n", what.c_str());
  abort();
}

std::string Differences(const std::map<std::string, std::string>& a,
                        const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end())
      d += " lost:" + k;
    else if (it->second != v)
      d += " changed:" + k;
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) d += " extra:" + k;
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ready = [] {
    char tmpl[] = "/tmp/moat-undofuzz-XXXXXX";
    g_root = fs::canonical(mkdtemp(tmpl));
    g_ws = g_root / "ws";
    g_cp = g_root / "state" / "checkpoints" / "s";
    fs::create_directories(g_root / "state");
    return true;
  }();
  (void)ready;
  ResetWorkspace();
  auto before = Snapshot(g_ws);
  auto store = undo::CheckpointStore::Open(g_cp.string(), undo::CheckpointLimits{});
  if (!store) Fail("the store did not open: " + store.error().message);
  auto rec = (*store)->BeginCall(1, "c", "fuzz");
  if (!rec) Fail("no recorder");
  {
    ExecRequest req;
    req.mounts.push_back({g_ws.string(), "/w", false});
    req.limits.max_files_created = 64;
    req.limits.max_write_bytes = 1 << 16;
    req.limits.max_open_fds = 32;
    req.preimages = rec;
    std::vector<CapabilityEvent> events;
    auto made = wasi::Fs::Create(req, &events);
    if (!made) abort();
    wasi::Fs& f = **made;
    Input in{data, size};
    std::vector<uint32_t> fds = {3};
    auto pick = [&]() { return fds[in.Byte() % fds.size()]; };
    for (int step = 0; step < 32 && in.n; ++step) {
      uint8_t op = in.Byte() % 9;
      uint32_t dir = pick();
      std::string a = in.Path(), b = in.Path();
      uint32_t fd = 0;
      switch (op) {
        case 0:
        case 1: {
          uint16_t oflags = in.Byte() & 0xf;
          uint64_t rights = (in.Byte() & 1) ? ~0ull : wasi::kRightFdRead | wasi::kRightFdReaddir;
          if (f.PathOpen(dir, in.Byte() & 1, a, oflags, rights, ~0ull, in.Byte() & 1, &fd) ==
              wasi::kSuccess) {
            fds.push_back(fd);
            char text[] = "written by the guest";
            iovec v{text, static_cast<size_t>(1 + in.Byte() % 20)};
            uint64_t n;
            f.Write(fd, std::span<const iovec>(&v, 1), &n);
          }
          break;
        }
        case 2: f.PathCreateDirectory(dir, a); break;
        case 3: f.PathRemoveDirectory(dir, a); break;
        case 4: f.PathUnlinkFile(dir, a); break;
        case 5: f.PathRename(dir, a, pick(), b); break;
        case 6: f.PathLink(dir, 0, a, pick(), b); break;
        case 7: f.PathSymlink(b, dir, a); break;
        case 8: f.FilestatSetSize(pick(), in.Byte()); break;
      }
    }
  }
  undo::CallCheckpointSummary sum = rec->Finish();
  rec.reset();
  store->reset();
  if (!sum.undoable) return 0;  // said so: nothing to check
  undo::UndoOptions o;
  o.workspace = g_ws.string();
  o.roots = {g_ws.string()};
  auto r = undo::Undo(g_cp.string(), o);
  if (!r) Fail("the undo failed: " + r.error().message);
  if (r->refused) {
    std::string why;
    for (const auto& c : r->conflicts) why += " [" + c + "]";
    for (const auto& c : r->not_undoable) why += " [" + c + "]";
    Fail("the undo of an undoable call was refused:" + why);
  }
  auto after = Snapshot(g_ws);
  if (after != before) Fail("the undo did not restore the tree:" + Differences(before, after));
  return 0;
}
