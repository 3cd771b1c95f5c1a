// delete: removes a file, a symlink, or a directory (its contents only when recursive).
#include <errno.h>
#include <unistd.h>

#include "toolkit.h"

namespace {

using tk::json;

constexpr size_t kMaxNamesPerDir = 100000;

// Removes everything below and including `abs` without following symlinks; counts what
// it removed. Returns errno or 0 and the path that failed.
int RemoveTree(const std::string& abs, uint64_t* removed, std::string* failed, int depth) {
  struct stat st;
  if (int e = tk::Lstat(abs, &st)) {
    *failed = abs;
    return e;
  }
  if (S_ISDIR(st.st_mode)) {
    if (depth > 256) {
      *failed = abs;
      return ELOOP;
    }
    // Directories can hold more names than one listing takes: list until empty.
    for (;;) {
      std::vector<std::string> names;
      bool capped = false;
      if (int e = tk::ListNames(abs, kMaxNamesPerDir, &names, &capped)) {
        *failed = abs;
        return e;
      }
      for (const auto& n : names) {
        if (int e = RemoveTree(tk::JoinPath(abs, n), removed, failed, depth + 1)) return e;
      }
      if (!capped) break;
    }
    if (rmdir(abs.c_str()) != 0) {
      *failed = abs;
      return errno;
    }
  } else if (unlink(abs.c_str()) != 0) {
    *failed = abs;
    return errno;
  }
  ++*removed;
  return 0;
}

tk::Outcome Delete(const json& j) {
  tk::Args args(j, {"path", "recursive"});
  std::string arg = args.Str("path", true);
  bool recursive = args.Bool("recursive", false);
  if (!args.ok()) return args.Error();
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;
  if (tk::IsMountRoot(path)) {
    return tk::Fail("permission_denied",
                    tk::Display(path) + " is the workspace root; it cannot be deleted");
  }
  struct stat st;
  if (int e = tk::Lstat(path, &st)) return tk::FromErrno(e, path);
  uint64_t removed = 0;
  if (S_ISDIR(st.st_mode) && !recursive) {
    if (rmdir(path.c_str()) != 0) {
      int e = errno;
      if (e == ENOTEMPTY || e == EEXIST) {
        return tk::Fail("exists", tk::Display(path) +
                                      " is a directory that is not empty (set recursive to true "
                                      "to delete it with its contents)");
      }
      return tk::FromErrno(e, path, true);
    }
    removed = 1;
  } else {
    std::string failed;
    if (int e = RemoveTree(path, &removed, &failed, 0)) {
      tk::Outcome out = tk::FromErrno(e, failed, true);
      if (removed > 0)
        out.message += " (" + std::to_string(removed) + " entries were deleted before)";
      return out;
    }
  }
  return tk::Ok({{"path", tk::Display(path)}, {"type", tk::TypeName(st)}, {"deleted", removed}});
}

}  // namespace

int main() { return tk::Main(&Delete); }
