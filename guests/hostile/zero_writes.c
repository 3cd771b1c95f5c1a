// Calls fd_write with nothing to write, forever.
#include <wasi/api.h>
int main(void) {
  __wasi_ciovec_t iov = {(const uint8_t*)"", 0};
  __wasi_size_t n;
  for (;;) __wasi_fd_write(1, &iov, 1, &n);
}
