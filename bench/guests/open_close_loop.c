// bench_wasi guest: N raw path_open + fd_close pairs on an existing file, relative to the
// first preopened directory (fd 3).
//   open_close_loop N PATH
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 0;
  const char* path = argc > 2 ? argv[2] : "file";
  const __wasi_fd_t kPreopen = 3;
  for (long i = 0; i < n; ++i) {
    __wasi_fd_t fd;
    if (__wasi_path_open(kPreopen, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, 0,
                         __WASI_RIGHTS_FD_READ, 0, 0, &fd) != 0) {
      return 1;
    }
    if (__wasi_fd_close(fd) != 0) return 2;
  }
  return 0;
}
