// glob: paths matching a shell pattern (`*`, `?`, `[...]`, `**`), sorted and capped.
#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kMaxNamesPerDir = 100000;
constexpr size_t kMaxDirsVisited = 200000;

struct Search {
  std::vector<std::string> segments;  // the pattern, split on '/', runs of "**" folded
  size_t max_results = 1000;
  std::vector<std::string> matches;
  size_t dirs_visited = 0;
  bool truncated = false;
};

bool Full(Search& s) {
  if (s.matches.size() >= s.max_results || s.dirs_visited >= kMaxDirsVisited) {
    s.truncated = true;
    return true;
  }
  return false;
}

// Matches segments[i..] below the directory `abs` (shown as `rel`). Symlinks are listed
// but never entered.
void Match(Search& s, const std::string& abs, const std::string& rel, size_t i) {
  if (Full(s)) return;
  const std::string& seg = s.segments[i];
  bool last = i + 1 == s.segments.size();
  if (seg == "**") {
    if (last) {
      // "**" at the end matches everything below, at any depth.
    } else {
      Match(s, abs, rel, i + 1);  // zero directories
    }
  } else if (!tk::HasWildcard(seg)) {
    std::string child = tk::JoinPath(abs, seg);
    struct stat st;
    if (tk::Lstat(child, &st) != 0) return;
    std::string child_rel = tk::JoinPath(rel, seg);
    if (last) {
      s.matches.push_back(child_rel);
    } else if (S_ISDIR(st.st_mode)) {
      ++s.dirs_visited;
      Match(s, child, child_rel, i + 1);
    }
    return;
  }
  std::vector<std::string> names;
  bool capped = false;
  if (tk::ListNames(abs, kMaxNamesPerDir, &names, &capped) != 0) return;
  if (capped) s.truncated = true;
  for (const auto& name : names) {
    if (Full(s)) return;
    std::string child = tk::JoinPath(abs, name);
    std::string child_rel = tk::JoinPath(rel, name);
    if (seg == "**") {
      if (name[0] == '.') continue;
      struct stat st;
      if (tk::Lstat(child, &st) != 0) continue;
      if (last) s.matches.push_back(child_rel);
      if (S_ISDIR(st.st_mode)) {
        ++s.dirs_visited;
        Match(s, child, child_rel, i);  // one more directory
      }
      continue;
    }
    if (!tk::GlobMatch(seg, name)) continue;
    if (last) {
      s.matches.push_back(child_rel);
      continue;
    }
    struct stat st;
    if (tk::Lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
      ++s.dirs_visited;
      Match(s, child, child_rel, i + 1);
    }
  }
}

tk::Outcome Glob(const json& j) {
  tk::Args args(j, {"pattern", "path", "max_results"});
  std::string pattern = args.Str("pattern", true);
  std::string arg = args.Str("path", false, ".");
  int64_t max_results = args.Int("max_results", 1000, 1, 10000);
  if (!args.ok()) return args.Error();
  if (pattern.empty() || pattern.find('\0') != std::string::npos || pattern.size() > 4096) {
    return tk::Fail("invalid_pattern", "the pattern is empty, too long or contains NUL");
  }
  std::string base;
  tk::Outcome bad;
  if (pattern[0] == '/') {
    base = "/";
  } else if (!tk::ResolveArg(arg, &base, &bad)) {
    return bad;
  }
  Search s;
  s.max_results = static_cast<size_t>(max_results);
  size_t i = 0;
  while (i <= pattern.size()) {
    size_t k = pattern.find('/', i);
    if (k == std::string::npos) k = pattern.size();
    std::string seg = pattern.substr(i, k - i);
    if (seg == "..") return tk::Fail("invalid_pattern", "the pattern may not contain \"..\"");
    if (!seg.empty() && seg != "." &&
        !(seg == "**" && !s.segments.empty() && s.segments.back() == "**")) {
      s.segments.push_back(seg);
    }
    i = k + 1;
  }
  if (s.segments.empty()) return tk::Fail("invalid_pattern", "the pattern matches nothing");
  struct stat st;
  if (base != "/") {
    if (int e = tk::Stat(base, &st)) return tk::FromErrno(e, base);
    if (!S_ISDIR(st.st_mode)) {
      return tk::Fail("not_a_directory", tk::Display(base) + " is not a directory");
    }
  }
  Match(s, base, base == "/" ? "/" : "", 0);
  std::sort(s.matches.begin(), s.matches.end());
  s.matches.erase(std::unique(s.matches.begin(), s.matches.end()), s.matches.end());
  if (s.matches.size() > s.max_results) {
    s.matches.resize(s.max_results);
    s.truncated = true;
  }
  return tk::Ok({{"path", base == "/" ? std::string("/") : tk::Display(base)},
                 {"pattern", pattern},
                 {"matches", s.matches},
                 {"truncated", s.truncated}});
}

}  // namespace

int main() { return tk::Main(&Glob); }
