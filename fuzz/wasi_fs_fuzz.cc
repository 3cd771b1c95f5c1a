// Fuzzes the WASI capability layer (wasi::Fs) with sequences of path operations built from
// hostile path pieces, against a real directory tree, and checks after every input that
// nothing outside the mounts or inside the read-only mount changed, that no read returned
// outside or hidden content, and that no symlink the guest made points out of its mount.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "execution/wasi_fs.h"
#include "fs_fuzz_util.h"

namespace fs = std::filesystem;
using namespace moat;
using moat::fuzz::Input;
using moat::fuzz::Put;
using moat::fuzz::Snapshot;

namespace {

fs::path g_root, g_ws, g_ro, g_out;

std::map<std::string, std::string> g_out_before, g_ro_before;

void ResetWorkspace() {
  std::error_code ec;
  // Restore permissions the guest cannot change, then start from a known tree.
  fs::remove_all(g_ws, ec);
  Put(g_ws / "file", "inside");
  Put(g_ws / ".env", "HIDDEN");
  Put(g_ws / "sub" / "deep" / "f", "inside-deep");
  fs::create_symlink(g_out / "canary", g_ws / "abs");
  fs::create_symlink("../outside", g_ws / "up");
  fs::create_symlink("sub/deep", g_ws / "in");
  fs::create_symlink("loop", g_ws / "loop");
  fs::create_symlink(".env", g_ws / "envlink");
}

void Setup() {
  char tmpl[] = "/tmp/moat-fsfuzz-XXXXXX";
  g_root = mkdtemp(tmpl);
  g_ws = g_root / "ws";
  g_ro = g_root / "ro";
  g_out = g_root / "outside";
  Put(g_out / "canary", "OUTSIDE");
  Put(g_out / "sub" / "x", "OUTSIDE-x");
  Put(g_ro / "r", "readonly");
  fs::create_directories(g_ro / "rd");
  fs::create_symlink("../outside", g_ro / "up");
  g_out_before = Snapshot(g_out);
  g_ro_before = Snapshot(g_ro);
}

void Fail(const char* what, const std::string& detail) {
  fprintf(stderr, "INVARIANT BROKEN: %s: %s\n", what, detail.c_str());
  abort();
}

void CheckRead(wasi::Fs& f, uint32_t fd) {
  char buf[64] = {};
  iovec v{buf, sizeof buf - 1};
  uint64_t n = 0;
  if (f.Read(fd, std::span<const iovec>(&v, 1), &n) == wasi::kSuccess) {
    std::string got(buf, n);
    if (got.find("OUTSIDE") != std::string::npos) Fail("read outside content", got);
    if (got.find("HIDDEN") != std::string::npos) Fail("read hidden content", got);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ready = (Setup(), true);
  (void)ready;
  ResetWorkspace();
  ExecRequest req;
  req.mounts.push_back({g_ws.string(), "/w", false});
  req.mounts.push_back({g_ro.string(), "/r", true});
  req.limits.max_files_created = 64;
  req.limits.max_write_bytes = 1 << 16;
  req.limits.max_open_fds = 32;
  std::vector<CapabilityEvent> events;
  auto made = wasi::Fs::Create(req, &events);
  if (!made) abort();
  wasi::Fs& f = **made;
  Input in{data, size};
  std::vector<uint32_t> fds = {3, 4};
  auto pick = [&]() { return fds[in.Byte() % fds.size()]; };
  for (int step = 0; step < 32 && in.n; ++step) {
    uint8_t op = in.Byte() % 14;
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
          CheckRead(f, fd);
          iovec v{const_cast<char*>("w"), 1};
          uint64_t n;
          f.Write(fd, std::span<const iovec>(&v, 1), &n);
        }
        break;
      }
      case 2: f.PathCreateDirectory(dir, a); break;
      case 3: f.PathRemoveDirectory(dir, a); break;
      case 4: f.PathUnlinkFile(dir, a); break;
      case 5: f.PathRename(dir, a, pick(), b); break;
      case 6: f.PathLink(dir, in.Byte() & 1, a, pick(), b); break;
      case 7: f.PathSymlink(b, dir, a); break;
      case 8: {
        uint8_t buf[64];
        uint32_t used;
        f.PathReadlink(dir, a, buf, &used);
        break;
      }
      case 9: {
        wasi::FileStat st;
        f.PathFilestatGet(dir, in.Byte() & 1, a, &st);
        break;
      }
      case 10: f.PathFilestatSetTimes(dir, in.Byte() & 1, a, 0, 0, wasi::kFstMtim); break;
      case 11: {
        uint8_t buf[512];
        uint32_t used;
        f.Readdir(pick(), buf, in.Byte() % 4, &used);
        if (std::string_view(reinterpret_cast<char*>(buf), used).find(".env") !=
            std::string_view::npos) {
          Fail("hidden name listed", a);
        }
        break;
      }
      case 12: f.Renumber(pick(), pick()); break;
      case 13: f.FilestatSetSize(pick(), in.Byte()); break;
    }
  }
  made->reset();
  if (Snapshot(g_out) != g_out_before) Fail("outside changed", "");
  if (Snapshot(g_ro) != g_ro_before) Fail("read-only mount changed", "");
  std::error_code ec;
  // Symlinks the guest created must resolve (lexically) inside the workspace. The ones the
  // host made may have been moved by the guest; they are known by their text.
  static const std::set<std::string> kPremade = {(g_out / "canary").string(), "../outside",
                                                 "sub/deep", "loop", ".env"};
  for (auto it = fs::recursive_directory_iterator(g_ws, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!fs::is_symlink(it->symlink_status())) continue;
    std::string rel = it->path().lexically_relative(g_ws).string();
    fs::path target = fs::read_symlink(it->path());
    if (kPremade.count(target.string())) continue;
    fs::path resolved = (it->path().parent_path() / target).lexically_normal();
    std::string r = resolved.lexically_relative(g_ws).string();
    if (target.is_absolute() || r.rfind("..", 0) == 0) Fail("symlink out of the mount", rel);
  }
  return 0;
}
