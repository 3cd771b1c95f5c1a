// list_dir: the entries of a directory, optionally recursive, sorted and capped.
#include <unistd.h>

#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kMaxNamesPerDir = 100000;

struct Walk {
  bool include_dot = false;
  int64_t max_depth = 1;
  size_t max_entries = 1000;
  json entries = json::array();
  bool truncated = false;
};

// Lists `abs` (shown as `rel`) at `depth` (1 for the top); never follows symlinks, so
// loops cannot happen.
void List(Walk& w, const std::string& abs, const std::string& rel, int64_t depth) {
  std::vector<std::string> names;
  bool capped = false;
  if (tk::ListNames(abs, kMaxNamesPerDir, &names, &capped) != 0) return;
  if (capped) w.truncated = true;
  for (const auto& name : names) {
    if (!w.include_dot && name[0] == '.') continue;
    if (w.entries.size() >= w.max_entries) {
      w.truncated = true;
      return;
    }
    std::string child = tk::JoinPath(abs, name);
    std::string child_rel = tk::JoinPath(rel, name);
    struct stat st;
    if (tk::Lstat(child, &st) != 0) continue;  // vanished, or hidden by the sandbox
    json e = {{"path", child_rel}, {"type", tk::TypeName(st)}};
    if (S_ISREG(st.st_mode)) e["size"] = static_cast<uint64_t>(st.st_size);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(child.c_str(), target, sizeof target);
      if (n >= 0) e["target"] = std::string(target, static_cast<size_t>(n));
    }
    w.entries.push_back(std::move(e));
    if (S_ISDIR(st.st_mode) && depth < w.max_depth) List(w, child, child_rel, depth + 1);
  }
}

tk::Outcome ListDir(const json& j) {
  tk::Args args(j, {"path", "recursive", "max_depth", "max_entries", "include_hidden_dotfiles"});
  std::string arg = args.Str("path", false, ".");
  bool recursive = args.Bool("recursive", false);
  int64_t max_depth = args.Int("max_depth", 0, 1, 64);
  int64_t max_entries = args.Int("max_entries", 1000, 1, 10000);
  bool include_dot = args.Bool("include_hidden_dotfiles", false);
  if (!args.ok()) return args.Error();
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;

  struct stat st;
  if (int e = tk::Stat(path, &st)) return tk::FromErrno(e, path);
  if (!S_ISDIR(st.st_mode)) {
    return tk::Fail("not_a_directory", tk::Display(path) + " is not a directory");
  }
  Walk w;
  w.include_dot = include_dot;
  w.max_depth = max_depth ? max_depth : (recursive ? 16 : 1);
  w.max_entries = static_cast<size_t>(max_entries);
  std::vector<std::string> probe;
  bool capped = false;
  if (int e = tk::ListNames(path, 1, &probe, &capped)) return tk::FromErrno(e, path);
  List(w, path, "", 1);
  size_t count = w.entries.size();
  return tk::Ok({{"path", tk::Display(path)},
                 {"entries", std::move(w.entries)},
                 {"count", count},
                 {"truncated", w.truncated}});
}

}  // namespace

int main() { return tk::Main(&ListDir); }
