// What keeping checkpoints costs a write-heavy run: 1,000 edit_file calls, each on its own
// 10 KB file, through ToolGate::Call with a session's CheckpointStore (every pre-image
// copied, or reflinked where the filesystem can, before the edit; every post state hashed
// after it), against the same calls with none, measured in the same run, interleaved.
//   build/bench/bench_checkpoints [--quick] [--dir FOLDER]
// --dir puts the workspace on another filesystem (e.g. a btrfs or XFS mount, for reflinks).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "orchestration/agent/tool_gate.h"
#include "orchestration/session/agent_session.h"
#include "orchestration/session/services.h"
#include "orchestration/undo/checkpoints.h"

namespace {

using namespace moat::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;
namespace fs = std::filesystem;

std::string TenKb(int i) {
  std::string s;
  while (s.size() < 10 * 1024)
    s += "line " + std::to_string(s.size()) + " of file " + std::to_string(i) +
         ": the quick brown fox\n";
  return s;
}

// Whether `dir` is on a filesystem that shares extents (FICLONE).
bool Reflinks(const std::string& dir) {
  std::string a = dir + "/.reflink-a", b = dir + "/.reflink-b";
  std::ofstream(a) << "x";
  int fa = open(a.c_str(), O_RDONLY), fb = open(b.c_str(), O_WRONLY | O_CREAT, 0600);
  bool ok = fa >= 0 && fb >= 0 && ioctl(fb, FICLONE, fa) == 0;
  if (fa >= 0) close(fa);
  if (fb >= 0) close(fb);
  unlink(a.c_str());
  unlink(b.c_str());
  return ok;
}

void Prepare(const std::string& ws, int files) {
  fs::create_directories(ws + "/.moat");
  for (int i = 0; i < files; ++i) {
    std::ofstream(ws + "/f" + std::to_string(i) + ".txt", std::ios::trunc) << TenKb(i);
  }
}

// Seconds for `files` edit_file calls, one per file of `ws`, with checkpoints kept or not.
double Edits(moat::tools::Registry& reg, const std::string& ws, int files, bool keep) {
  moat::agent::Policy policy;
  moat::agent::FixedApprover allow(true);
  moat::agent::GateConfig gc;
  gc.workspace = ws;
  if (keep) {
    auto store = moat::undo::CheckpointStore::Open(ws + "/.moat/checkpoints/s",
                                                   moat::undo::CheckpointLimits{});
    if (!store) Die(store.error().message);
    gc.checkpoints = *store;
  }
  moat::agent::ToolGate gate(reg, policy, allow, nullptr, gc);
  auto t0 = Clock::now();
  for (int i = 0; i < files; ++i) {
    json args = {{"path", "f" + std::to_string(i) + ".txt"},
                 {"old_text", "line 0 of file " + std::to_string(i) + ":"},
                 {"new_text", "LINE 0 of file " + std::to_string(i) + ":"}};
    moat::agent::GateCall c{"c" + std::to_string(i), "edit_file", args.dump(),
                            static_cast<uint64_t>(i + 1)};
    auto t = gate.Call(c, nullptr, nullptr);
    if (t.status != "ok") Die("edit_file: " + t.status + ": " + t.result_text);
    if (keep && (!t.end.undoable || t.end.checkpoint == 0)) Die("a call was not checkpointed");
  }
  return Us(Clock::now() - t0) / 1e6;
}

// Seconds for a whole agent run over `ws`: a scripted model making `files` steps of one
// edit_file call each, through AgentSession with its session store and audit log (group
// commit), checkpoints kept or not.
double RunSeconds(moat::session::Services& services, const std::string& ws, int files, bool keep) {
  json turns = json::array();
  for (int i = 0; i < files; ++i) {
    json args = {{"path", "f" + std::to_string(i) + ".txt"},
                 {"old_text", "line 0 of file " + std::to_string(i) + ":"},
                 {"new_text", "LINE 0 of file " + std::to_string(i) + ":"}};
    turns.push_back({{"tool_calls", {{{"name", "edit_file"}, {"arguments", args}}}}});
  }
  turns.push_back({{"text", "done"}});
  std::ofstream(ws + ".script.json") << json({{"turns", turns}}).dump();
  json policy = {{"tools", {{"edit_file", "allow"}}},
                 {"budgets",
                  {{"steps", files + 5},
                   {"tool_calls", files + 5},
                   {"input_tokens", 1000000000000ull},
                   {"output_tokens", 1000000000000ull}}}};
  std::ofstream(ws + ".policy.json") << policy.dump();
  moat::session::SessionOptions o;
  o.workspace = ws;
  o.policy_file = ws + ".policy.json";
  o.provider.script = ws + ".script.json";
  o.approval = moat::session::ApprovalMode::kAllowAll;
  o.no_checkpoints = !keep;
  auto session = moat::session::AgentSession::Open(services, o);
  if (!session) Die(session.error().message);
  auto t0 = Clock::now();
  auto r = (*session)->Send("go", nullptr);
  double secs = Us(Clock::now() - t0) / 1e6;
  if (r.stop != moat::agent::StopKind::kCompleted) Die("the run stopped: " + r.message);
  if (r.tool_calls != static_cast<uint64_t>(files)) Die("not every call ran");
  return secs;
}

// Microseconds a call of the recorder's own work takes, without a tool: what an edit
// through a temporary file and a rename asks of it (the temporary kept absent, the file
// copied, both post states, the journal lines).
double RecorderUs(const std::string& ws, int files) {
  Prepare(ws, files);
  auto store = moat::undo::CheckpointStore::Open(ws + "/.moat/checkpoints/s",
                                                 moat::undo::CheckpointLimits{});
  if (!store) Die(store.error().message);
  int root = open(ws.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  auto t0 = Clock::now();
  for (int i = 0; i < files; ++i) {
    std::string name = "f" + std::to_string(i) + ".txt", tmp = "." + name + ".tmp";
    auto rec = (*store)->BeginCall(static_cast<uint64_t>(i + 1), "c", "edit_file");
    if (!rec) Die("no recorder");
    rec->Before(ws, tmp, root, tmp, false);
    rec->BeforeMove(ws, tmp, root, tmp, name, root, name);
    auto sum = rec->Finish();
    if (!sum.undoable) Die(sum.reason);
  }
  double us = Us(Clock::now() - t0) / files;
  close(root);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string where = "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--dir" && i + 1 < argc)
      where = argv[++i];
    else
      Die("usage: bench_checkpoints [--quick] [--dir FOLDER]");
  }
  std::string tmp = where + "/moat-bench-checkpoints-" + std::to_string(getpid());
  fs::create_directories(tmp + "/ws/.moat");
  moat::session::ServicesOptions so;
  so.tools_builtin_dir = MOAT_TOOLS_DIR;
  auto services = moat::session::Services::Create(so);
  if (!services) Die(services.error().message);
  moat::tools::Registry& reg = (*services)->registry();
  if (!reg.Find("edit_file")) Die("edit_file did not load: " + reg.LoadError("edit_file"));
  bool reflinks = Reflinks(tmp);
  printf("moat checkpoint benchmarks%s\n\n", quick ? " (quick)" : "");

  int files = quick ? 200 : 1000;
  int rounds = quick ? 2 : 5;
  // Every workspace is written before anything is timed, and nothing is deleted until the
  // end: ext4's inode allocator slows creates after many deletes, and each edit creates a
  // file (the tool's temporary), with or without checkpoints.
  Prepare(tmp + "/warm", 50);
  Edits(reg, tmp + "/warm", 50, true);  // the module mapped, the stack set up
  for (int r = 0; r < rounds; ++r) {
    Prepare(tmp + "/off" + std::to_string(r), files);
    Prepare(tmp + "/on" + std::to_string(r), files);
  }
  sync();
  std::vector<double> off, on;
  for (int r = 0; r < rounds; ++r) {  // interleaved, the order alternating
    bool first_on = r % 2 == 1;
    for (int k = 0; k < 2; ++k) {
      bool keep = (k == 0) == first_on;
      std::string ws = tmp + (keep ? "/on" : "/off") + std::to_string(r);
      (keep ? on : off).push_back(Edits(reg, ws, files, keep));
    }
  }
  // Whole agent runs: the model's turns, the session store, the audit log.
  std::vector<double> run_off, run_on;
  for (int r = 0; r < rounds; ++r) {
    Prepare(tmp + "/run-off" + std::to_string(r), files);
    Prepare(tmp + "/run-on" + std::to_string(r), files);
  }
  sync();
  for (int r = 0; r < rounds; ++r) {
    bool first_on = r % 2 == 0;
    for (int k = 0; k < 2; ++k) {
      bool keep = (k == 0) == first_on;
      std::string ws = tmp + (keep ? "/run-on" : "/run-off") + std::to_string(r);
      (keep ? run_on : run_off).push_back(RunSeconds(**services, ws, files, keep));
    }
  }
  double a = Percentile(off, 0.5), b = Percentile(on, 0.5);
  double ra = Percentile(run_off, 0.5), rb = Percentile(run_on, 0.5);
  printf("%d edit_file calls, each on its own 10 KB file, median of %d rounds (%s)\n", files,
         rounds, reflinks ? "pre-images reflinked" : "pre-images copied: no reflinks here");
  printf("  %-52s %8.1f ms  (%.0f us a call, baseline)\n", "no checkpoints", a * 1e3,
         a * 1e6 / files);
  printf("  %-52s %8.1f ms  (%.0f us a call, %+.1f%%)\n", "checkpoints kept", b * 1e3,
         b * 1e6 / files, (b / a - 1) * 100);
  printf("  %-52s %8.1f us a call\n", "the recorder's own work (no tool, no change)",
         RecorderUs(tmp + "/recorder", files));
  printf("\nan agent run of %d steps, one edit_file call each (session store, audit log)\n", files);
  printf("  %-52s %8.1f ms  (%.0f us a step, baseline)\n", "no checkpoints", ra * 1e3,
         ra * 1e6 / files);
  printf("  %-52s %8.1f ms  (%.0f us a step, %+.1f%%)\n", "checkpoints kept", rb * 1e3,
         rb * 1e6 / files, (rb / ra - 1) * 100);
  if (reflinks) {
    Check("checkpoint overhead on an agent run, reflinks: <= 2%", rb <= ra * 1.02,
          std::to_string((rb / ra - 1) * 100).substr(0, 5) + "%");
  } else {
    Check("checkpoint overhead on an agent run (copies): <= 10%", rb <= ra * 1.10,
          std::to_string((rb / ra - 1) * 100).substr(0, 5) + "%");
  }
  fs::remove_all(tmp);
  printf("\n%s\n", g_misses == 0 ? "all targets met" : "some targets missed");
  return 0;
}
