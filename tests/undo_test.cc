// Diff and undo of a session's checkpoints (src/orchestration/undo/undo.h): journals made
// with the real CheckpointStore and CallRecorder on temp folders, then checked byte for
// byte. Hostile cases first: a file changed after the call, a symlink planted in place of a
// folder, a call killed before its end, torn and damaged journals; then each kind of change
// (rewrite, truncate, create, delete, rename, mkdir, rmdir, symlinks, a moved tree), undo to
// each step, 1,000 files, pruning, and the `moat sessions` commands on such journals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "base/json_text.h"
#include "execution/wasi_fs.h"
#include "interaction/exit_status.h"
#include "orchestration/agent/session_store.h"
#include "orchestration/session/session_undo.h"
#include "orchestration/session/workspace.h"
#include "orchestration/undo/checkpoints.h"
#include "orchestration/undo/undo.h"
#include "test_util.h"

namespace moat::undo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSession = "0123456789ab";

std::string Read(const std::string& path) { return test::Slurp(path); }

uint32_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v) {
    if (x.find(s) != std::string::npos) return true;
  }
  return false;
}

class UndoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    base_ = test::TempDir(std::string("undo-") + info->name());
    fs::create_directories(base_ + "/ws/.moat");
    ws_ = fs::canonical(base_ + "/ws").string();
    dir_ = ws_ + "/.moat/checkpoints/" + kSession;
    auto store = CheckpointStore::Open(dir_, {});
    ASSERT_TRUE(store) << store.error().message;
    store_ = *store;
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  std::string P(const std::string& rel) const { return ws_ + "/" + rel; }

  // A call of `step`: each of `paths` reported before `change` runs, then the call ends
  // (unless `end` is false: a call killed mid-way).
  void Call(uint64_t step, const std::vector<std::string>& paths,
            const std::function<void()>& change, bool end = true,
            const std::vector<std::string>& trees = {}) {
    auto rec = store_->BeginCall(step, "call-" + std::to_string(++calls_), "write_file");
    ASSERT_NE(rec, nullptr);
    auto before = [&](const std::string& rel, bool tree) {
      size_t slash = rel.rfind('/');
      std::string parent = slash == std::string::npos ? ws_ : P(rel.substr(0, slash));
      std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
      int fd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ASSERT_GE(fd, 0) << parent;
      rec->Before(ws_, rel, fd, name, tree);
      close(fd);
    };
    for (const std::string& t : trees) before(t, true);
    for (const std::string& p : paths) before(p, false);
    change();
    if (end) rec->Finish();
  }

  // A call of `step` that renames `from` to `to` (reported through BeforeMove).
  void Move(uint64_t step, const std::string& from, const std::string& to) {
    auto rec = store_->BeginCall(step, "call-" + std::to_string(++calls_), "move");
    ASSERT_NE(rec, nullptr);
    int fd = open(ws_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    rec->BeforeMove(ws_, from, fd, from, to, fd, to);
    ASSERT_EQ(rename(P(from).c_str(), P(to).c_str()), 0);
    close(fd);
    rec->Finish();
  }

  Result<UndoReport> DoUndo(uint64_t to_step = 0, bool force = false, bool dry_run = false) {
    UndoOptions o;
    o.to_step = to_step;
    o.force = force;
    o.dry_run = dry_run;
    o.workspace = ws_;
    store_.reset();  // an open session holds its checkpoints' lock: close it, as a run ends
    auto r = Undo(dir_, o);
    // Open again for calls after the undo (a journal a test broke on purpose stays shut).
    if (auto store = CheckpointStore::Open(dir_, {})) store_ = *store;
    return r;
  }
  DiffReport DoDiff(uint64_t step = 0) {
    DiffOptions o;
    o.step = step;
    o.workspace = ws_;
    auto d = Diff(dir_, o);
    EXPECT_TRUE(d) << (d ? "" : d.error().message);
    return d ? *d : DiffReport{};
  }

  std::string base_, ws_, dir_;
  std::shared_ptr<CheckpointStore> store_;
  int calls_ = 0;
};

// ---- hostile ----

// Sequences a guest can run through the WASI layer itself (wasi::Fs with the call's
// recorder as its PreImageSink), each of which once left a file changed with no pre-image
// while the call still said it was undoable.
TEST_F(UndoTest, GuestSequencesThroughTheWasiLayerAreAllUndone) {
  // A folder renamed onto a non-empty one fails; the fallback (empty it, remove it, rename
  // again) must still keep the files it removes.
  test::PutFile(P("tmp/x"), "new\n");
  test::PutFile(P("out/x"), "precious\n");
  // A hard link, then a write through the new name: the first name is changed too.
  test::PutFile(P("a"), "original\n");
  auto rec = store_->BeginCall(1, "c", "guest");
  ASSERT_NE(rec, nullptr);
  {
    ExecRequest req;
    req.mounts.push_back({ws_, "/w", false});
    req.preimages = rec;
    std::vector<CapabilityEvent> events;
    auto made = wasi::Fs::Create(req, &events);
    ASSERT_TRUE(made) << made.error().message;
    wasi::Fs& f = **made;
    EXPECT_NE(f.PathRename(3, "tmp", 3, "out"), wasi::kSuccess);  // not empty
    EXPECT_EQ(f.PathUnlinkFile(3, "out/x"), wasi::kSuccess);
    EXPECT_EQ(f.PathRemoveDirectory(3, "out"), wasi::kSuccess);
    EXPECT_EQ(f.PathRename(3, "tmp", 3, "out"), wasi::kSuccess);
    EXPECT_EQ(f.PathLink(3, 0, "a", 3, "b"), wasi::kSuccess);
    uint32_t fd = 0;
    ASSERT_EQ(f.PathOpen(3, 0, "b", wasi::kOflagTrunc, ~0ull, ~0ull, 0, &fd), wasi::kSuccess);
    char evil[] = "evil\n";
    iovec iov{evil, 5};
    uint64_t n = 0;
    EXPECT_EQ(f.Write(fd, std::span<const iovec>(&iov, 1), &n), wasi::kSuccess);
    EXPECT_EQ(n, 5u);
    f.Close(fd);
  }
  EXPECT_EQ(Read(P("a")), "evil\n");
  auto sum = rec->Finish();
  EXPECT_TRUE(sum.undoable) << sum.reason;
  rec.reset();
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->refused) << DumpJson(UndoToJson(*r));
  EXPECT_EQ(Read(P("out/x")), "precious\n");
  EXPECT_EQ(Read(P("tmp/x")), "new\n");
  EXPECT_EQ(Read(P("a")), "original\n");
  EXPECT_FALSE(fs::exists(P("b")));
}

// A folder moved away and a symlink put in its place: the undo puts the folder back first
// (the symlink is the session's own, not a conflict), then what was beneath it.
TEST_F(UndoTest, AFolderReplacedByASymlinkIsPutBack) {
  test::PutFile(P("sub/deep/f"), "deep\n");
  test::PutFile(P("sub/x"), "x\n");
  auto rec = store_->BeginCall(1, "c", "guest");
  ASSERT_NE(rec, nullptr);
  {
    ExecRequest req;
    req.mounts.push_back({ws_, "/w", false});
    req.preimages = rec;
    std::vector<CapabilityEvent> events;
    auto made = wasi::Fs::Create(req, &events);
    ASSERT_TRUE(made) << made.error().message;
    ASSERT_EQ((*made)->PathRename(3, "sub", 3, "moved"), wasi::kSuccess);
    ASSERT_EQ((*made)->PathSymlink("moved", 3, "sub"), wasi::kSuccess);
  }
  EXPECT_TRUE(rec->Finish().undoable);
  rec.reset();
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->refused) << DumpJson(UndoToJson(*r));
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(P("sub"))));
  EXPECT_EQ(Read(P("sub/deep/f")), "deep\n");
  EXPECT_EQ(Read(P("sub/x")), "x\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(P("moved"))));
}

// A journal whose roots climb with "..", or a checkpoint folder reached through a
// symlink, is not obeyed.
TEST_F(UndoTest, JournalRootsWithDotDotAndSymlinkedFoldersAreRefused) {
  std::string outside = base_ + "/outside";
  test::PutFile(outside + "/victim", "keep\n");
  std::string journal =
      std::string(R"({"t":"call","call":1,"step":1,"id":"c","tool":"w","ts":"t"})") + "\n" +
      R"({"t":"pre","call":1,"n":1,"root":")" + ws_ +
      R"(/../outside","path":"victim","kind":"absent"})" + "\n";
  store_.reset();
  test::PutFile(dir_ + "/journal.jsonl", journal);
  auto r = DoUndo(0, true);
  EXPECT_FALSE(r) << "a root with .. was accepted";
  EXPECT_EQ(Read(outside + "/victim"), "keep\n");

  // .moat/checkpoints as a symlink to a folder tools can read.
  std::string ws2 = base_ + "/ws2";
  fs::create_directories(ws2 + "/.moat");
  fs::create_directories(ws2 + "/docs");
  fs::create_symlink("../docs", ws2 + "/.moat/checkpoints");
  auto opened = CheckpointStore::Open(fs::canonical(ws2).string() + "/.moat/checkpoints/abc", {});
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("symlink"), std::string::npos) << opened.error().message;
  EXPECT_FALSE(fs::exists(ws2 + "/docs/abc"));
  auto pruned = Prune(fs::canonical(ws2).string() + "/.moat", 0);
  EXPECT_FALSE(pruned);
}

// A session's checkpoints are locked while it is open: no undo runs under its calls, and
// no second process records into them.
TEST_F(UndoTest, AnOpenSessionIsNeitherUndoneNorOpenedTwice) {
  test::PutFile(P("a.txt"), "original\n");
  Call(1, {"a.txt"}, [&] { test::PutFile(P("a.txt"), "by the agent\n"); });
  UndoOptions o;
  o.workspace = ws_;
  auto r = Undo(dir_, o);  // store_ is still open
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("another moat process"), std::string::npos) << r.error().message;
  EXPECT_EQ(Read(P("a.txt")), "by the agent\n");
  auto second = CheckpointStore::Open(dir_, {});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
  auto done = DoUndo();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(Read(P("a.txt")), "original\n");
}

TEST_F(UndoTest, FileChangedAfterTheCallIsRefusedThenForced) {
  test::PutFile(P("a.txt"), "original\n");
  Call(1, {"a.txt"}, [&] { test::PutFile(P("a.txt"), "by the agent\n"); });
  test::PutFile(P("a.txt"), "by the user\n");

  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_TRUE(d.entries[0].changed_since);
  EXPECT_NE(d.entries[0].summary.find("changed since"), std::string::npos);

  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->refused);
  ASSERT_EQ(r->conflicts.size(), 1u);
  EXPECT_NE(r->conflicts[0].find("a.txt"), std::string::npos);
  EXPECT_EQ(Read(P("a.txt")), "by the user\n");  // nothing changed

  auto forced = DoUndo(0, true);
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_FALSE(forced->refused);
  EXPECT_EQ(Read(P("a.txt")), "original\n");
}

TEST_F(UndoTest, SymlinkPlantedInPlaceOfAFolderIsNeverWrittenThrough) {
  fs::create_directories(P("d"));
  test::PutFile(P("d/f"), "kept\n");
  Call(1, {"d/f"}, [&] { test::PutFile(P("d/f"), "changed\n"); });
  // After the call, the folder is swapped for a symlink to a folder outside the workspace.
  fs::create_directories(base_ + "/outside");
  test::PutFile(base_ + "/outside/f", "changed\n");
  fs::remove_all(P("d"));
  fs::create_directory_symlink(base_ + "/outside", P("d"));

  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->refused);
  EXPECT_TRUE(Contains(r->conflicts, "d/f: a symlink")) << testing::PrintToString(r->conflicts);

  auto forced = DoUndo(0, true);
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_EQ(Read(base_ + "/outside/f"), "changed\n");  // not written through the link
  EXPECT_TRUE(fs::is_symlink(P("d")));
  EXPECT_TRUE(forced->restored.empty() && forced->created.empty());
}

TEST_F(UndoTest, FileReplacedBySymlinkIsAConflictAndNotFollowed) {
  test::PutFile(P("a"), "mine\n");
  test::PutFile(base_ + "/secret", "outside\n");
  Call(1, {"a"}, [&] { test::PutFile(P("a"), "agent\n"); });
  fs::remove(P("a"));
  fs::create_symlink(base_ + "/secret", P("a"));
  auto r = DoUndo();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->refused);
  auto forced = DoUndo(0, true);
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_EQ(Read(base_ + "/secret"), "outside\n");
  EXPECT_FALSE(fs::is_symlink(P("a")));  // the link itself was replaced
  EXPECT_EQ(Read(P("a")), "mine\n");
}

TEST_F(UndoTest, CallWithoutAnEndIsRestoredWithoutTheCheck) {
  test::PutFile(P("k.txt"), "before the kill\n");
  Call(
      1, {"k.txt"}, [&] { test::PutFile(P("k.txt"), "half writ"); }, /*end=*/false);
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->refused);
  EXPECT_TRUE(Contains(r->notes, "without a check")) << testing::PrintToString(r->notes);
  EXPECT_EQ(Read(P("k.txt")), "before the kill\n");
}

TEST_F(UndoTest, TornLastLineIsIgnored) {
  test::PutFile(P("t.txt"), "v1\n");
  Call(1, {"t.txt"}, [&] { test::PutFile(P("t.txt"), "v2\n"); });
  {
    std::ofstream j(dir_ + "/journal.jsonl", std::ios::app);
    j << R"({"t":"undone","ca)";
  }
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->calls.size(), 1u);
  EXPECT_EQ(Read(P("t.txt")), "v1\n");
}

TEST_F(UndoTest, GarbageLineInTheMiddleIsAnErrorNamingTheLine) {
  test::PutFile(P("g.txt"), "v1\n");
  Call(1, {"g.txt"}, [&] { test::PutFile(P("g.txt"), "v2\n"); });
  std::string journal = Read(dir_ + "/journal.jsonl");
  size_t first = journal.find('\n');
  journal.insert(first + 1, "this is not a record\n");
  test::PutFile(dir_ + "/journal.jsonl", journal);
  auto r = DoUndo();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(Read(P("g.txt")), "v2\n");
  DiffOptions o;
  auto d = Diff(dir_, o);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("line 2"), std::string::npos);
}

TEST_F(UndoTest, DamagedBlobStopsBeforeAnythingChanges) {
  test::PutFile(P("a"), "aaaa\n");
  test::PutFile(P("b"), "bbbb\n");
  Call(1, {"a", "b"}, [&] {
    test::PutFile(P("a"), "A\n");
    test::PutFile(P("b"), "B\n");
  });
  // The second file's kept bytes are cut short (wherever the store keeps them).
  std::string pack = dir_ + "/data.pack";
  if (Exists(pack) && fs::file_size(pack) > 0) {
    fs::resize_file(pack, fs::file_size(pack) - 2);
  } else {
    std::vector<std::string> blobs;
    for (const auto& e : fs::directory_iterator(dir_ + "/blobs")) blobs.push_back(e.path());
    std::sort(blobs.begin(), blobs.end());
    ASSERT_EQ(blobs.size(), 2u);
    test::PutFile(blobs[1], "bb");
  }
  auto r = DoUndo();
  ASSERT_FALSE(r);
  EXPECT_EQ(Read(P("a")), "A\n");  // untouched
  EXPECT_EQ(Read(P("b")), "B\n");
}

TEST_F(UndoTest, CallNotUndoableIsRefusedThenForcedRestoresWhatWasKept) {
  test::PutFile(P("ok.txt"), "one\n");
  ASSERT_EQ(mkfifo(P("pipe").c_str(), 0600), 0);
  Call(1, {"ok.txt", "pipe"}, [&] {
    test::PutFile(P("ok.txt"), "two\n");
    fs::remove(P("pipe"));
  });
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->refused);
  ASSERT_EQ(r->not_undoable.size(), 1u);
  EXPECT_NE(r->not_undoable[0].find("call 1"), std::string::npos);
  EXPECT_EQ(Read(P("ok.txt")), "two\n");
  auto forced = DoUndo(0, true);
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_EQ(Read(P("ok.txt")), "one\n");
}

TEST_F(UndoTest, JournalOthersCanWriteIsNotObeyed) {
  test::PutFile(P("w"), "1");
  Call(1, {"w"}, [&] { test::PutFile(P("w"), "2"); });
  ASSERT_EQ(chmod((dir_ + "/journal.jsonl").c_str(), 0666), 0);
  auto r = DoUndo();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_EQ(Read(P("w")), "2");
}

TEST_F(UndoTest, MountRootThatIsGoneIsAnErrorNamingIt) {
  test::PutFile(P("x"), "1");
  Call(1, {"x"}, [&] { test::PutFile(P("x"), "2"); });
  // Keep the checkpoints, lose the root: move the folder away.
  std::string moved = base_ + "/cp";
  store_.reset();
  fs::rename(dir_, moved);
  fs::remove_all(ws_);
  UndoOptions o;
  auto r = Undo(moved, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(ws_), std::string::npos) << r.error().message;
}

TEST_F(UndoTest, JournalPathLeavingTheRootIsRefused) {
  test::PutFile(base_ + "/victim", "keep me\n");
  std::string journal = R"({"t":"call","call":1,"step":1,"id":"c","tool":"w","ts":"t"})"
                        "\n"
                        R"({"t":"pre","call":1,"n":1,"root":")" +
                        ws_ + R"(","path":"../victim","kind":"absent"})" + "\n" +
                        R"({"t":"end","call":1,"undoable":true,"reason":"","files":1,"bytes":0})" +
                        "\n";
  test::PutFile(dir_ + "/journal.jsonl", journal);
  auto r = DoUndo(0, true);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(Read(base_ + "/victim"), "keep me\n");
}

TEST_F(UndoTest, PathsOutsideTheWorkspaceAreShownAbsolute) {
  std::string mnt = base_ + "/mnt";
  fs::create_directories(mnt);
  mnt = fs::canonical(mnt).string();
  test::PutFile(mnt + "/m.txt", "a\n");
  auto rec = store_->BeginCall(1, "c", "write_file");
  ASSERT_NE(rec, nullptr);
  int fd = open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  rec->Before(mnt, "m.txt", fd, "m.txt", false);
  close(fd);
  test::PutFile(mnt + "/m.txt", "b\n");
  rec->Finish();
  rec.reset();  // the recorder holds the store (and its lock) too
  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_EQ(d.entries[0].shown, mnt + "/m.txt");
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->restored, std::vector<std::string>{mnt + "/m.txt"});
  EXPECT_EQ(Read(mnt + "/m.txt"), "a\n");
}

// ---- each kind of change ----

TEST_F(UndoTest, RewriteShowsAUnifiedDiffAndUndoesByteForByte) {
  std::string before = "one\ntwo\nthree\n";
  test::PutFile(P("a.txt"), before);
  chmod(P("a.txt").c_str(), 0640);
  Call(1, {"a.txt"}, [&] { test::PutFile(P("a.txt"), "one\nTWO\nthree\n"); });
  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_EQ(d.entries[0].shown, "a.txt");
  EXPECT_EQ(d.entries[0].summary, "changed file a.txt");
  EXPECT_NE(d.entries[0].diff.find("-two\n+TWO\n"), std::string::npos) << d.entries[0].diff;
  EXPECT_NE(DiffText(d).find("--- a/a.txt"), std::string::npos);
  json j = DiffToJson(d);
  EXPECT_EQ(j["entries"][0]["path"], "a.txt");
  EXPECT_EQ(j["entries"][0]["before"]["kind"], "file");

  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->restored, std::vector<std::string>{"a.txt"});
  EXPECT_EQ(Read(P("a.txt")), before);
  EXPECT_EQ(ModeOf(P("a.txt")), 0640u);
  // A second undo finds nothing left, and the diff shows nothing.
  auto again = DoUndo();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->calls.empty());
  EXPECT_TRUE(DoDiff().entries.empty());
}

TEST_F(UndoTest, TruncatedFile) {
  std::string big(100000, 'x');
  test::PutFile(P("big"), big);
  Call(1, {"big"}, [&] { ASSERT_EQ(truncate(P("big").c_str(), 0), 0); });
  ASSERT_TRUE(DoUndo());
  EXPECT_EQ(Read(P("big")), big);
}

TEST_F(UndoTest, CreatedFileIsDeleted) {
  Call(1, {"new.txt"}, [&] { test::PutFile(P("new.txt"), "hello\n"); });
  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_EQ(d.entries[0].summary, "created file new.txt (6 bytes)");
  EXPECT_NE(d.entries[0].diff.find("+hello"), std::string::npos);
  auto r = DoUndo();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deleted, std::vector<std::string>{"new.txt"});
  EXPECT_FALSE(Exists(P("new.txt")));
}

TEST_F(UndoTest, DeletedFileIsCreatedWithItsMode) {
  test::PutFile(P("gone.sh"), "#!/bin/sh\necho hi\n");
  chmod(P("gone.sh").c_str(), 0751);
  Call(1, {"gone.sh"}, [&] { fs::remove(P("gone.sh")); });
  EXPECT_EQ(DoDiff().entries.at(0).summary, "deleted file gone.sh (18 bytes)");
  auto r = DoUndo();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->created, std::vector<std::string>{"gone.sh"});
  EXPECT_EQ(Read(P("gone.sh")), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(ModeOf(P("gone.sh")), 0751u);
}

TEST_F(UndoTest, RenamedFileBothPathsKept) {
  test::PutFile(P("from"), "content\n");
  Call(1, {"from", "to"}, [&] { fs::rename(P("from"), P("to")); });
  ASSERT_EQ(DoDiff().entries.size(), 2u);
  ASSERT_TRUE(DoUndo());
  EXPECT_EQ(Read(P("from")), "content\n");
  EXPECT_FALSE(Exists(P("to")));
}

TEST_F(UndoTest, MkdirAndRmdir) {
  Call(1, {"made"}, [&] { fs::create_directory(P("made")); });
  fs::create_directory(P("old"));
  chmod(P("old").c_str(), 0750);
  Call(1, {"old"}, [&] { fs::remove(P("old")); });
  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 2u);
  EXPECT_EQ(d.entries[0].summary, "created directory made");
  EXPECT_EQ(d.entries[1].summary, "deleted directory old");
  ASSERT_TRUE(DoUndo());
  EXPECT_FALSE(Exists(P("made")));
  EXPECT_TRUE(fs::is_directory(P("old")));
  EXPECT_EQ(ModeOf(P("old")), 0750u);
}

TEST_F(UndoTest, FolderMadeByTheCallButHoldingUserFilesIsAConflict) {
  Call(1, {"made"}, [&] { fs::create_directory(P("made")); });
  test::PutFile(P("made/users.txt"), "not the agent's\n");
  auto r = DoUndo();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->refused);
  EXPECT_TRUE(Contains(r->conflicts, "made"));
  EXPECT_EQ(Read(P("made/users.txt")), "not the agent's\n");
}

TEST_F(UndoTest, SymlinkCreatedAndRetargeted) {
  Call(1, {"l"}, [&] { fs::create_symlink("target-one", P("l")); });
  fs::create_symlink("old-target", P("m"));
  Call(1, {"m"}, [&] {
    fs::remove(P("m"));
    fs::create_symlink("new-target", P("m"));
  });
  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 2u);
  EXPECT_EQ(d.entries[0].summary, "created symlink l -> target-one");
  EXPECT_EQ(d.entries[1].summary, "symlink m changed: -> old-target became -> new-target");
  ASSERT_TRUE(DoUndo());
  EXPECT_FALSE(Exists(P("l")));
  EXPECT_EQ(fs::read_symlink(P("m")).string(), "old-target");
}

TEST_F(UndoTest, RenamedDirectoryTree) {
  test::PutFile(P("t/x.txt"), "x\n");
  test::PutFile(P("t/sub/y.bin"), std::string("\0\1\2", 3));
  fs::create_symlink("x.txt", P("t/link"));
  Call(1, {"u"}, [&] { fs::rename(P("t"), P("u")); }, true, {"t"});
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_FALSE(r->refused) << testing::PrintToString(r->conflicts);
  EXPECT_FALSE(Exists(P("u")));
  EXPECT_EQ(Read(P("t/x.txt")), "x\n");
  EXPECT_EQ(Read(P("t/sub/y.bin")), std::string("\0\1\2", 3));
  EXPECT_EQ(fs::read_symlink(P("t/link")).string(), "x.txt");
}

TEST_F(UndoTest, DirectoryMovedOverAnExistingOneThroughBeforeMove) {
  test::PutFile(P("t/x.txt"), "x\n");
  test::PutFile(P("t/sub/y.txt"), "y\n");
  fs::create_directory(P("u"));  // an empty folder the move replaces
  chmod(P("u").c_str(), 0705);
  Move(1, "t", "u");
  ASSERT_EQ(Read(P("u/sub/y.txt")), "y\n");
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_FALSE(r->refused) << testing::PrintToString(r->conflicts);
  EXPECT_EQ(Read(P("t/x.txt")), "x\n");
  EXPECT_EQ(Read(P("t/sub/y.txt")), "y\n");
  EXPECT_TRUE(fs::is_directory(P("u")));
  EXPECT_TRUE(fs::is_empty(P("u")));
  EXPECT_EQ(ModeOf(P("u")), 0705u);
}

TEST_F(UndoTest, BinaryFileIsOneLine) {
  test::PutFile(P("img"), std::string("\x89PNG\0\0", 6));
  Call(1, {"img"}, [&] { test::PutFile(P("img"), std::string("\x89PNG\0\0\0\0", 8)); });
  DiffReport d = DoDiff();
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_EQ(d.entries[0].summary, "Binary file img changed (6 bytes -> 8 bytes)");
  EXPECT_TRUE(d.entries[0].diff.empty());
}

TEST_F(UndoTest, SeveralCallsOnOneFileUndoneToEachStep) {
  test::PutFile(P("v"), "v1\n");
  Call(1, {"v"}, [&] { test::PutFile(P("v"), "v2\n"); });
  Call(2, {"v"}, [&] { test::PutFile(P("v"), "v3\n"); });
  Call(3, {"v"}, [&] { test::PutFile(P("v"), "v4\n"); });
  // The diff of step 2 ends where step 3 began.
  DiffReport d2 = DoDiff(2);
  ASSERT_EQ(d2.entries.size(), 1u);
  EXPECT_FALSE(d2.entries[0].after_is_disk);
  EXPECT_NE(d2.entries[0].diff.find("-v2\n+v3\n"), std::string::npos) << d2.entries[0].diff;
  EXPECT_NE(DoDiff().entries.at(0).diff.find("-v1\n+v4\n"), std::string::npos);

  auto dry = DoUndo(3, false, true);
  ASSERT_TRUE(dry);
  EXPECT_EQ(dry->calls, std::vector<uint64_t>{3});
  EXPECT_EQ(Read(P("v")), "v4\n");
  ASSERT_TRUE(DoUndo(3));
  EXPECT_EQ(Read(P("v")), "v3\n");
  ASSERT_TRUE(DoUndo(2));
  EXPECT_EQ(Read(P("v")), "v2\n");
  ASSERT_TRUE(DoUndo(1));
  EXPECT_EQ(Read(P("v")), "v1\n");
}

TEST_F(UndoTest, ThousandFiles) {
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    names.push_back("many/f" + std::to_string(i));
    test::PutFile(P(names.back()), "before " + std::to_string(i) + "\n");
  }
  Call(1, names, [&] {
    for (int i = 0; i < 1000; ++i) test::PutFile(P(names[i]), "after " + std::to_string(i));
  });
  EXPECT_EQ(DoDiff().entries.size(), 1000u);
  auto r = DoUndo();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->restored.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(Read(P(names[i])), "before " + std::to_string(i) + "\n") << names[i];
  }
  EXPECT_EQ(test::CountDir(P("many")), 1000);  // no temp files left
}

// ---- pruning, the front door, the CLI ----

TEST_F(UndoTest, PruneRemovesOnlyOldFoldersAndNeverFollowsSymlinks) {
  std::string root = ws_ + "/.moat/checkpoints";
  fs::create_directories(root + "/aaaaaaaaaaaa");
  test::PutFile(root + "/aaaaaaaaaaaa/journal.jsonl", "");
  timespec old[2] = {{time(nullptr) - 10 * 86400, 0}, {time(nullptr) - 10 * 86400, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (root + "/aaaaaaaaaaaa/journal.jsonl").c_str(), old, 0), 0);
  fs::create_directories(base_ + "/elsewhere");
  test::PutFile(base_ + "/elsewhere/keep", "x");
  fs::create_directory_symlink(base_ + "/elsewhere", root + "/bbbbbbbbbbbb");
  auto removed = Prune(ws_ + "/.moat", 7 * 86400);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, std::vector<std::string>{"aaaaaaaaaaaa"});
  EXPECT_FALSE(Exists(root + "/aaaaaaaaaaaa"));
  EXPECT_TRUE(Exists(dir_));  // written just now
  EXPECT_EQ(Read(base_ + "/elsewhere/keep"), "x");
  EXPECT_FALSE(Prune(base_, 0));                          // not a .moat folder
  EXPECT_FALSE(DeleteCheckpoints(base_ + "/elsewhere"));  // not a checkpoint folder
  EXPECT_TRUE(Exists(base_ + "/elsewhere/keep"));
}

TEST_F(UndoTest, WorkspaceRefusesIdsThatAreNotSessionIds) {
  auto ws = session::Workspace::Open(ws_);
  ASSERT_TRUE(ws);
  for (const char* bad : {"../x", "..", "", "0123456789AB", "0123456789abc", "01234/6789ab"}) {
    auto d = ws->checkpoints_dir(bad);
    EXPECT_FALSE(d) << bad;
    if (!d) EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
  }
  auto good = ws->checkpoints_dir(kSession);
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, dir_);
  EXPECT_FALSE(session::SessionDiff(*ws, "../../etc", 0));
}

TEST_F(UndoTest, SessionUndoWritesAnAuditRecord) {
  test::PutFile(P("a"), "1");
  Call(4, {"a"}, [&] { test::PutFile(P("a"), "2"); });
  auto ws = session::Workspace::Open(ws_);
  ASSERT_TRUE(ws);
  UndoOptions o;
  o.to_step = 4;
  store_.reset();  // the session's run has ended
  auto r = session::SessionUndo(*ws, kSession, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(P("a")), "1");
  std::string log = Read(ws->audit_path());
  auto line = ParseJson(log.substr(0, log.find('\n')));
  ASSERT_TRUE(line) << log;
  EXPECT_EQ((*line)["type"], "undo");
  EXPECT_EQ((*line)["session"], kSession);
  EXPECT_EQ((*line)["to_step"], 4);
  EXPECT_EQ((*line)["files"], 1);
  EXPECT_EQ((*line)["forced"], false);
  EXPECT_EQ((*line)["calls"], json::array({1}));
}

TEST_F(UndoTest, CliDiffUndoPruneAndRm) {
  test::PutFile(P("c.txt"), "cli before\n");
  Call(1, {"c.txt"}, [&] { test::PutFile(P("c.txt"), "cli \x1b[31mafter\n"); });
  std::string w = " --workspace " + ws_ + " ";
  auto diff = test::Cli("sessions" + w + "diff " + kSession);
  EXPECT_EQ(diff.status, 0) << diff.err;
  EXPECT_NE(diff.out.find("+cli \\x1b[31mafter"), std::string::npos) << diff.out;
  EXPECT_EQ(diff.out.find('\x1b'), std::string::npos);  // escaped, never raw
  auto dj = test::Cli("sessions" + w + "diff " + kSession + " --json");
  ASSERT_EQ(dj.status, 0) << dj.err;
  auto parsed = ParseJson(dj.out);
  ASSERT_TRUE(parsed) << dj.out;
  EXPECT_EQ((*parsed)["entries"][0]["path"], "c.txt");

  EXPECT_EQ(test::Cli("sessions" + w + "diff ../../x").status, kExitUsage);
  test::PutFile(P("c.txt"), "user edit\n");
  store_.reset();  // the session's run has ended
  auto refused = test::Cli("sessions" + w + "undo " + kSession);
  EXPECT_EQ(refused.status, kExitFailed) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("conflict: c.txt"), std::string::npos) << refused.out;
  EXPECT_EQ(Read(P("c.txt")), "user edit\n");
  auto forced = test::Cli("sessions" + w + "undo " + kSession + " --force --json");
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_EQ(Read(P("c.txt")), "cli before\n");

  EXPECT_EQ(test::Cli("sessions" + w + "prune --older-than banana").status, 2);
  auto prune = test::Cli("sessions" + w + "prune --older-than 7d");
  EXPECT_EQ(prune.status, 0) << prune.err;
  EXPECT_TRUE(Exists(dir_));
  auto rm = test::Cli("sessions" + w + "rm " + kSession);
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_FALSE(Exists(dir_));
  EXPECT_EQ(test::Cli("sessions" + w + "rm " + kSession).status, kExitUsage);
}

TEST_F(UndoTest, StoreDeleteRemovesTheSessionAndItsRows) {
  auto store = agent::SessionStore::Open(ws_ + "/.moat/sessions.db");
  ASSERT_TRUE(store) << store.error().message;
  auto id = (*store)->Create(ws_, "scripted", "m", "t");
  ASSERT_TRUE(id);
  EXPECT_TRUE(agent::SessionStore::IsSessionId(*id));
  agent::Message m;
  m.role = agent::Message::Role::kUser;
  m.content = "hi";
  ASSERT_TRUE((*store)->Append(*id, m));
  ASSERT_TRUE((*store)->RecordRun(*id, {}));
  auto deleted = (*store)->Delete(*id);
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_FALSE((*store)->Info(*id));
  EXPECT_FALSE((*store)->Delete(*id));
  auto all = (*store)->List();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty());
}

}  // namespace
}  // namespace moat::undo
