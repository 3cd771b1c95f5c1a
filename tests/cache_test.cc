// The compile cache: hits across processes, private folder, tampering detected and
// rebuilt, concurrent compiles of one module never torn.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>

#include "test_util.h"

namespace moat {
namespace {

std::unique_ptr<Engine> NewEngine(const std::string& dir) {
  EngineOptions o;
  o.cache_dir = dir;
  auto e = Engine::Create(o);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  return std::move(*e);
}

std::string OnlyObject(const std::string& dir) {
  std::string found;
  if (DIR* d = opendir((dir + "/objects").c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') found = dir + "/objects/" + e->d_name;
    }
    closedir(d);
  }
  return found;
}

ExecResult RunHello(Engine& e) {
  auto h = e.LoadFile(test::Guest("hello"));
  EXPECT_TRUE(h.ok());
  ExecRequest req;
  return e.Run(*h, req);
}

TEST(Cache, SecondEngineHitsAndFolderIsPrivate) {
  std::string dir = test::TempDir("cache-hit");
  auto a = NewEngine(dir);
  auto h1 = a->LoadFile(test::Guest("hello"));
  ASSERT_TRUE(h1.ok());
  EXPECT_FALSE(h1->cache_hit);
  EXPECT_GT(h1->compile_ms, 0);
  auto b = NewEngine(dir);
  auto h2 = b->LoadFile(test::Guest("hello"));
  ASSERT_TRUE(h2.ok());
  EXPECT_TRUE(h2->cache_hit);
  EXPECT_EQ(h2->compile_ms, 0);
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(test::CountDir(dir + "/tmp"), 0) << "no leftovers";
}

TEST(Cache, ExistingLooseFolderIsMadePrivate) {
  std::string dir = test::TempDir("cache-loose");
  ASSERT_EQ(mkdir(dir.c_str(), 0777), 0);
  chmod(dir.c_str(), 0777);
  NewEngine(dir);
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// Runs `moat ARGS` with the given cache folder; returns its stdout (stderr is dropped:
// sanitizer builds print warnings there).
std::string Moat(const std::string& dir, const std::string& args) {
  std::string cmd = "MOAT_CACHE_DIR='" + dir + "' " + MOAT_BINARY + " " + args + " 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

TEST(Cache, TamperedObjectIsDetectedAndRebuilt) {
  // A later process finds the object changed on disk (bad disk, or an attacker with the
  // user's rights): the digest check refuses it and the module is rebuilt.
  std::string dir = test::TempDir("cache-tamper");
  std::string hello = test::Guest("hello");
  EXPECT_NE(Moat(dir, "compile " + hello).find("compiled in"), std::string::npos);
  EXPECT_NE(Moat(dir, "compile " + hello).find("cached"), std::string::npos);
  std::string obj = OnlyObject(dir);
  ASSERT_FALSE(obj.empty());
  chmod(obj.c_str(), 0600);
  {
    std::fstream f(obj, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2000);
    f.write("\xde\xad\xbe\xef", 4);
  }
  EXPECT_NE(Moat(dir, "compile " + hello).find("compiled in"), std::string::npos)
      << "a tampered object must be rebuilt, not loaded";
  EXPECT_EQ(Moat(dir, "run " + hello), "hello from wasm\n");
}

TEST(Cache, GarbageIndexIsRebuilt) {
  std::string dir = test::TempDir("cache-index");
  ASSERT_TRUE(NewEngine(dir)->LoadFile(test::Guest("hello")).ok());
  std::string index;
  if (DIR* d = opendir((dir + "/index").c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') index = dir + "/index/" + e->d_name;
    }
    closedir(d);
  }
  ASSERT_FALSE(index.empty());
  std::ofstream(index) << "../../../../etc/passwd\n";
  auto e = NewEngine(dir);
  auto h = e->LoadFile(test::Guest("hello"));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->cache_hit);
  ExecRequest req;
  EXPECT_EQ(e->Run(*h, req).status, RunStatus::kOk);
}

TEST(Cache, ConcurrentProcessesCompileOnceWithoutTearing) {
  std::string dir = test::TempDir("cache-race");
  const int kProcs = 4;
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      setenv("MOAT_CACHE_DIR", dir.c_str(), 1);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execl(MOAT_BINARY, "moat", "compile", test::Guest("sha256").c_str(), nullptr);
      _exit(127);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(test::CountDir(dir + "/index"), 1);
  EXPECT_EQ(test::CountDir(dir + "/objects"), 1);
  EXPECT_EQ(test::CountDir(dir + "/tmp"), 0);
  auto e = NewEngine(dir);
  auto h = e->LoadFile(test::Guest("sha256"));
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->cache_hit);
}

// A copy of guest `name` with a custom section appended: another module (another cache
// key) that compiles to the very same object.
std::string Variant(const std::string& name, const std::string& dir, int i) {
  auto bytes = test::GuestBytes(name);
  std::string tag = "variant-" + std::to_string(i);
  bytes.push_back(0);                                         // custom section
  bytes.push_back(static_cast<uint8_t>(1 + tag.size() + 1));  // its size
  bytes.push_back(static_cast<uint8_t>(tag.size()));          // name
  bytes.insert(bytes.end(), tag.begin(), tag.end());
  bytes.push_back('x');  // payload
  std::string path = dir + "/" + tag + ".wasm";
  test::PutFile(path, std::string(bytes.begin(), bytes.end()));
  return path;
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Objects are named by their digest, so two modules can share one. Building the second
// must not replace the file the first one checked: another process may be between its
// digest check and its dlopen of that very inode.
TEST(Cache, AnObjectSharedByTwoModulesIsNeverReplaced) {
  std::string dir = test::TempDir("cache-shared");
  std::string a = Variant("ref_func_table", dir, 1), b = Variant("ref_func_table", dir, 2);
  std::string cache = dir + "/cache";
  EXPECT_NE(Moat(cache, "compile " + a).find("compiled in"), std::string::npos);
  std::string obj = OnlyObject(cache);
  ASSERT_FALSE(obj.empty());
  ino_t first = Inode(obj);
  EXPECT_NE(Moat(cache, "compile " + b).find("compiled in"), std::string::npos);
  EXPECT_EQ(test::CountDir(cache + "/index"), 2);
  ASSERT_EQ(OnlyObject(cache), obj) << "the same object";
  EXPECT_EQ(Inode(obj), first) << "an object with the same digest was put over the first";
  // A damaged object is still replaced by a good one.
  chmod(obj.c_str(), 0600);
  {
    std::fstream f(obj, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.write("\xde\xad\xbe\xef", 4);
  }
  std::string c = Variant("ref_func_table", dir, 3);
  EXPECT_NE(Moat(cache, "compile " + c).find("compiled in"), std::string::npos);
  EXPECT_NE(Inode(obj), first);
  for (const std::string& m : {a, b, c}) {
    test::CliResult r = test::Cli("run " + m, "", "MOAT_CACHE_DIR=" + cache);
    EXPECT_EQ(r.status, 46) << m << ": " << r.err;
  }
}

// Modules sharing one object, compiled at once by separate processes on a cold cache:
// every run finishes normally (one process's placing of the object never lands between
// another's check and load of it).
TEST(Cache, ConcurrentCompilesOfModulesSharingAnObjectAllFinish) {
  std::string dir = test::TempDir("cache-shared-race");
  const int kProcs = 4, kRounds = 10;
  std::vector<std::string> modules;
  for (int i = 0; i < kProcs; ++i) modules.push_back(Variant("ref_func_table", dir, i));
  int failures = 0;
  std::string errors;
  for (int round = 0; round < kRounds; ++round) {
    std::string cache = dir + "/cache-" + std::to_string(round);
    std::vector<pid_t> pids;
    for (int i = 0; i < kProcs; ++i) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        setenv("MOAT_CACHE_DIR", cache.c_str(), 1);
        std::string err = cache + "-" + std::to_string(i) + ".err";
        int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        execl(MOAT_BINARY, "moat", "run", modules[static_cast<size_t>(i)].c_str(), nullptr);
        _exit(127);
      }
      pids.push_back(pid);
    }
    for (int i = 0; i < kProcs; ++i) {
      int status = 0;
      ASSERT_EQ(waitpid(pids[static_cast<size_t>(i)], &status, 0), pids[static_cast<size_t>(i)]);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 46) {
        ++failures;
        errors += test::Slurp(cache + "-" + std::to_string(i) + ".err");
      }
    }
    EXPECT_EQ(test::CountDir(cache + "/objects"), 1);
  }
  EXPECT_EQ(failures, 0) << errors;
}

TEST(Cache, ListAndClear) {
  std::string dir = test::TempDir("cache-clear");
  auto cache = CompileCache::Open(dir);
  ASSERT_TRUE(cache.ok());
  ASSERT_TRUE(NewEngine(dir)->LoadFile(test::Guest("hello")).ok());
  auto list = cache->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_GT((*list)[0].size_bytes, 0u);
  auto removed = cache->Clear();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(cache->List()->size(), 0u);
  EXPECT_EQ(RunHello(*NewEngine(dir)).status, RunStatus::kOk);  // rebuilt on demand
}

}  // namespace
}  // namespace moat
