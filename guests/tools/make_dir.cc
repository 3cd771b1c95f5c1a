// make_dir: creates a directory, optionally with its missing parents.
#include <errno.h>
#include <sys/stat.h>

#include "toolkit.h"

namespace {

using tk::json;

tk::Outcome MakeDir(const json& j) {
  tk::Args args(j, {"path", "parents"});
  std::string arg = args.Str("path", true);
  bool parents = args.Bool("parents", false);
  if (!args.ok()) return args.Error();
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;
  struct stat st;
  int e = tk::Stat(path, &st);
  if (e == 0) {
    if (parents && S_ISDIR(st.st_mode)) {
      return tk::Ok({{"path", tk::Display(path)}, {"created", false}});
    }
    return tk::Fail("exists", tk::Display(path) + " already exists");
  }
  if (e != ENOENT) return tk::FromErrno(e, path, true);
  if (parents) {
    std::string failed;
    if (int pe = tk::MakeDirs(path, &failed)) return tk::FromErrno(pe, failed, true);
  } else if (mkdir(path.c_str(), 0755) != 0) {
    int me = errno;
    struct stat pst;
    if (me == ENOENT && tk::Stat(tk::Parent(path), &pst) == ENOENT) {
      return tk::Fail("not_found", tk::Display(tk::Parent(path)) +
                                       " does not exist (set parents to true to create it)");
    }
    return tk::FromErrno(me, path, true);
  }
  return tk::Ok({{"path", tk::Display(path)}, {"created", true}});
}

}  // namespace

int main() { return tk::Main(&MakeDir); }
