// Recurses without end: must become a stack-exhaustion trap, not a host crash.
#include <stdio.h>
int depth(volatile int n) {
  volatile char pad[64];
  pad[n & 63] = (char)n;
  return depth(n + 1) + pad[0];
}
int main(void) { return depth(0); }
