// move: renames a file or directory inside the workspace.
#include <errno.h>
#include <stdio.h>

#include "toolkit.h"

namespace {

using tk::json;

tk::Outcome Move(const json& j) {
  tk::Args args(j, {"from", "to", "overwrite", "create_dirs"});
  std::string from_arg = args.Str("from", true);
  std::string to_arg = args.Str("to", true);
  bool overwrite = args.Bool("overwrite", false);
  bool create_dirs = args.Bool("create_dirs", false);
  if (!args.ok()) return args.Error();
  std::string from, to;
  tk::Outcome bad;
  if (!tk::ResolveArg(from_arg, &from, &bad) || !tk::ResolveArg(to_arg, &to, &bad)) return bad;
  if (tk::IsMountRoot(from) || tk::IsMountRoot(to)) {
    return tk::Fail("permission_denied", "the workspace root cannot be moved or replaced");
  }
  if (from == to) return tk::Fail("invalid_arguments", "from and to are the same path");
  if (to.size() > from.size() && to.compare(0, from.size(), from) == 0 && to[from.size()] == '/') {
    return tk::Fail("invalid_arguments", "cannot move " + tk::Display(from) + " into itself");
  }
  struct stat src, dst;
  if (int e = tk::Lstat(from, &src)) return tk::FromErrno(e, from);
  int de = tk::Lstat(to, &dst);
  if (de == 0) {
    if (!overwrite) {
      return tk::Fail("exists",
                      tk::Display(to) + " already exists (set overwrite to true to replace it)");
    }
    if (S_ISDIR(dst.st_mode) && !S_ISDIR(src.st_mode)) {
      return tk::Fail("not_a_file", tk::Display(to) + " is a directory");
    }
    if (!S_ISDIR(dst.st_mode) && S_ISDIR(src.st_mode)) {
      return tk::Fail("not_a_directory", tk::Display(to) + " is not a directory");
    }
  } else if (de != ENOENT) {
    return tk::FromErrno(de, to, true);
  } else if (create_dirs) {
    std::string failed;
    if (int pe = tk::MakeDirs(tk::Parent(to), &failed)) return tk::FromErrno(pe, failed, true);
  }
  if (rename(from.c_str(), to.c_str()) != 0) {
    int e = errno;
    // Tell which side failed: a missing target directory, or the source.
    struct stat st;
    if (e == ENOENT && tk::Stat(tk::Parent(to), &st) != 0) {
      return tk::FromErrno(ENOENT, tk::Parent(to), true);
    }
    return tk::FromErrno(e, e == EXDEV ? to : from, true);
  }
  return tk::Ok({{"from", tk::Display(from)},
                 {"to", tk::Display(to)},
                 {"type", tk::TypeName(src)},
                 {"replaced", de == 0}});
}

}  // namespace

int main() { return tk::Main(&Move); }
