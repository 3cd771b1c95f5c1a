// Prints the clocks and some random bytes, sleeps, and prints how long the sleep took on
// the monotonic clock: what a guest can observe of time and entropy.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <wasi/api.h>

int main(int argc, char** argv) {
  long sleep_ms = argc > 1 ? atol(argv[1]) : 0;
  __wasi_timestamp_t real = 0, mono0 = 0, mono1 = 0;
  __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &real);
  __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &mono0);
  unsigned char r[16];
  __wasi_random_get(r, sizeof r);
  printf("realtime %llu\nrandom ", (unsigned long long)real);
  for (int i = 0; i < 16; ++i) printf("%02x", r[i]);
  struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &mono1);
  printf("\nslept_ms %llu\n", (unsigned long long)((mono1 - mono0) / 1000000));
  return 0;
}
