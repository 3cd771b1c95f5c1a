// Sleeps for argv[1] milliseconds (a blocking host call: poll_oneoff), then prints the
// monotonic time it slept and a random number.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  long ms = argc > 1 ? atol(argv[1]) : 10;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&req, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long slept = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  unsigned r = 0;
  getentropy(&r, sizeof r);
  printf("slept %ld ms\n", slept);
  return slept >= ms ? 0 : 1;
}
