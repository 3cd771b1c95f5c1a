// Module pipeline, back half: C source -> shared object, in a content-addressed cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace moat {

class CompileBudget;

// The system C compiler with moat's fixed flags, and its identity for cache keys.
class CCompiler {
 public:
  static Result<CCompiler> Find();
  // Identity of compiler binary + flags + runtime header: changes whenever output could.
  const std::string& identity() const { return identity_; }
  // Compiles dir/moat_module.c into out_path, under the budget's limits: cc and every
  // process it starts run in dir (their temporaries too), in a process group killed at the
  // budget's deadline or cancel. A limit reached is kInvalidModule naming it (or the
  // budget's StopError); other failures are kCompile with the compiler's first lines.
  Status Compile(const std::string& dir, const std::string& out_path, uint64_t c_source_bytes,
                 const CompileBudget& budget) const;

  // -O2 for generated C up to kO2MaxSourceBytes (about 20% faster code, compiled in a few
  // seconds), -O1 above it, where -O2 doubles compile time and memory (SQLite: 33 s at
  // -O1, 63 s at -O2) for no measured speed. A function of the module alone, so the cache
  // key (module digest + pipeline + compiler identity) still determines the object.
  static constexpr uint64_t kO2MaxSourceBytes = 8ull << 20;
  static const char* OptLevelFor(uint64_t c_source_bytes);

 private:
  std::string path_;
  std::string identity_;
};

// An object whose content was checked against its digest, and the file it was read from
// (so the loader can confirm it mapped that same file).
struct VerifiedObject {
  std::string path;  // empty: not in the cache
  uint64_t dev = 0;
  uint64_t ino = 0;
  bool found() const { return !path.empty(); }
};

struct CacheEntry {
  std::string key;
  std::string object_path;
  uint64_t size_bytes = 0;
  int64_t mtime = 0;
};

// Layout under dir (mode 0700):
//   index/<key>        one line: sha256 of the object        (written atomically)
//   objects/<sha>.so   the compiled module, named by its own digest (immutable)
//   locks/<key>.lock   flock held while one process compiles that key
//   tmp/               work folders of compilations in flight, each locked by its owner;
//                      one left by a killed process is removed by the next compile
class CompileCache {
 public:
  static Result<CompileCache> Open(std::string dir);
  static std::string DefaultDir();

  const std::string& dir() const { return dir_; }

  // The verified object for key, or one with an empty path when absent. A corrupted or
  // tampered object (digest mismatch) is removed and reported absent, to be rebuilt.
  Result<VerifiedObject> Find(const std::string& key) const;

  // Finds key, or builds it with `build(work_dir, out_so)` under a per-key lock so that
  // concurrent processes compile once and never see a torn object. Waiting for that lock
  // ends with the budget (its StopError). The work folder is removed on every path.
  Result<VerifiedObject> FindOrBuild(
      const std::string& key,
      const std::function<Status(const std::string& work_dir, const std::string& out_so)>& build,
      bool* built, const CompileBudget& budget) const;

  Result<std::vector<CacheEntry>> List() const;
  // Removes every entry; returns how many.
  Result<size_t> Clear() const;

 private:
  explicit CompileCache(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace moat
