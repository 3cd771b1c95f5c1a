// bench_wasi guest: N raw fd_write calls of one byte each to fd 1 (stdout).
//   fd_write_loop N
#include <stdlib.h>
#include <wasi/api.h>

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 0;
  static const uint8_t kByte = 'x';
  __wasi_ciovec_t iov = {&kByte, 1};
  for (long i = 0; i < n; ++i) {
    __wasi_size_t written = 0;
    if (__wasi_fd_write(1, &iov, 1, &written) != 0 || written != 1) return 1;
  }
  return 0;
}
