// Shared code of the built-in file tools (wasm32-wasi commands; see docs/tools.md):
// reading the arguments, writing the one-line result, guest paths, errno → error codes,
// and small file helpers. Built once and linked into every tool.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tk {

using json = nlohmann::json;

// What a tool returns: content on success, or one error code and a message.
struct Outcome {
  bool ok = true;
  json content;
  std::string code;
  std::string message;
};

inline Outcome Ok(json content) { return Outcome{true, std::move(content), {}, {}}; }
inline Outcome Fail(std::string code, std::string message) {
  return Outcome{false, nullptr, std::move(code), std::move(message)};
}

// Typed access to the argument object. The first problem is kept; later getters return
// their defaults. Unknown properties are an error too (the schemas are strict).
class Args {
 public:
  Args(const json& object, std::vector<std::string> known);
  std::string Str(const char* key, bool required, std::string fallback = "");
  bool Bool(const char* key, bool fallback);
  int64_t Int(const char* key, int64_t fallback, int64_t min, int64_t max);
  bool ok() const { return error_.empty(); }
  Outcome Error() const { return Fail("invalid_arguments", error_); }

 private:
  const json* Find(const char* key);
  void Problem(std::string message);
  const json& object_;
  std::string error_;
};

// Reads the argument object from stdin, runs `tool`, prints the result line; returns the
// process's exit status (0 unless the result cannot be written).
int Main(Outcome (*tool)(const json& args));

// --- Paths ---------------------------------------------------------------------------
// Absolute and lexically normalised ("." and ".." folded, "//" collapsed) guest path;
// relative paths start at the working directory (/workspace when it exists).
std::string Absolute(std::string_view path);
// How results show a path: relative to the working directory when beneath it.
std::string Display(const std::string& absolute);
// The guest paths of the mounts (preopened directories), normalised.
const std::vector<std::string>& Mounts();
bool IsMountRoot(const std::string& absolute);
bool InsideAMount(const std::string& absolute);
// Checks a path argument (no NUL, not empty) and makes it absolute; on failure fills `out`.
bool ResolveArg(const std::string& arg, std::string* absolute, Outcome* out);
std::string JoinPath(const std::string& dir, const std::string& name);
std::string Parent(const std::string& absolute);
std::string BaseName(const std::string& absolute);

// --- Errors --------------------------------------------------------------------------
// Maps errno to the contract's codes; the message names the path. `writing` tells an EPERM
// of a mutation (read-only mount, protected name) from one of an escaping path.
Outcome FromErrno(int err, const std::string& absolute, bool writing = false);

// --- Files ---------------------------------------------------------------------------
// lstat/stat returning errno (0 on success).
int Lstat(const std::string& path, struct stat* st);
int Stat(const std::string& path, struct stat* st);
const char* TypeName(const struct stat& st);
// Reads at most `cap` bytes of an open fd into `out`; returns errno or 0.
int ReadUpTo(int fd, size_t cap, std::string* out);
// Writes all of `data`; returns errno or 0.
int WriteAll(int fd, std::string_view data);
// True when the bytes look like text: no NUL and valid UTF-8 (a sequence cut by the end
// of the sample is fine).
bool LooksLikeText(std::string_view sample);
// The longest prefix of `s` of at most `max` bytes that does not split a UTF-8 sequence.
size_t Utf8Prefix(std::string_view s, size_t max);
// Writes `data` to `path` through a temporary file in the same directory and a rename,
// so the file is either the old one or the new one. Returns errno or 0.
int WriteAtomically(const std::string& path, std::string_view data);
// The first half of WriteAtomically: `data` in a new hidden file beside `path`
// (".NAME.moat-tmp-XXXXXXXX"), named in *tmp. Returns errno or 0; on failure nothing is
// left behind.
int WriteTemporary(const std::string& path, std::string_view data, std::string* tmp);
// A hidden name beside `path` (".NAME.moat-TAG-XXXXXXXX") that does not exist yet.
std::string SiblingName(const std::string& path, const char* tag);
// mkdir -p of an absolute directory path; returns errno or 0, and the path that failed.
int MakeDirs(const std::string& dir, std::string* failed);
// Names of a directory's entries except "." and "..", sorted bytewise; at most `cap`
// (sets *capped when more existed). Returns errno or 0.
int ListNames(const std::string& dir, size_t cap, std::vector<std::string>* names, bool* capped);

// --- Patterns ------------------------------------------------------------------------
// Shell glob over a '/'-separated relative path: `*`, `?`, `[...]` within one component,
// `**` as a whole component for any number of directories (zero included). A leading
// dot must be matched explicitly.
bool GlobMatch(std::string_view pattern, std::string_view path);
bool HasWildcard(std::string_view segment);

}  // namespace tk
