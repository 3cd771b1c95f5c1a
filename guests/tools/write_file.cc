// write_file: creates or replaces a text file (atomically), or appends to one.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "toolkit.h"

namespace {

using tk::json;

tk::Outcome WriteFile(const json& j) {
  tk::Args args(j, {"path", "content", "create_dirs", "overwrite", "append"});
  std::string arg = args.Str("path", true);
  std::string content = args.Str("content", true);
  bool create_dirs = args.Bool("create_dirs", false);
  bool overwrite = args.Bool("overwrite", true);
  bool append = args.Bool("append", false);
  if (!args.ok()) return args.Error();
  std::string path;
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &path, &bad)) return bad;
  if (tk::IsMountRoot(path)) {
    return tk::Fail("not_a_file", tk::Display(path) + " is a directory");
  }

  struct stat st;
  int e = tk::Stat(path, &st);
  bool existed = e == 0;
  if (e == 0 && S_ISDIR(st.st_mode)) {
    return tk::Fail("not_a_file", tk::Display(path) + " is a directory");
  }
  if (e == 0 && !S_ISREG(st.st_mode)) {
    return tk::Fail("not_a_file", tk::Display(path) + " is not a regular file");
  }
  if (e != 0 && e != ENOENT) return tk::FromErrno(e, path, true);
  if (existed && !overwrite && !append) {
    return tk::Fail("exists",
                    tk::Display(path) + " already exists (set overwrite to true to replace it)");
  }
  if (!existed && create_dirs) {
    std::string failed;
    if (int pe = tk::MakeDirs(tk::Parent(path), &failed)) return tk::FromErrno(pe, failed, true);
  }

  if (append) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return tk::FromErrno(errno, path, true);
    int we = tk::WriteAll(fd, content);
    if (close(fd) != 0 && we == 0) we = errno;
    if (we != 0) return tk::FromErrno(we, path, true);
  } else if (int we = tk::WriteAtomically(path, content)) {
    return tk::FromErrno(we, path, true);
  }
  return tk::Ok(
      {{"path", tk::Display(path)}, {"bytes_written", content.size()}, {"created", !existed}});
}

}  // namespace

int main() { return tk::Main(&WriteFile); }
