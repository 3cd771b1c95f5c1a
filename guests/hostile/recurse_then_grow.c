// Recurses argv[1] frames deep on the native stack, then calls memory.grow past the
// limit at the bottom: runtime helpers must not run out of stack inside malloc.
// Exit 0: the grow was refused; a deeper run must end in a clean stack-exhaustion trap.
#include <stdlib.h>

static volatile int grown = 1;
static int down(int d);
static int (*volatile next)(int) = down;  // an indirect call: no compiler can loop it

static int down(int d) {
  if (d == 0) {
    grown = __builtin_wasm_memory_grow(0, 30000);
    return 0;
  }
  return next(d - 1) ^ d;
}

int main(int argc, char** argv) {
  down(argc > 1 ? atoi(argv[1]) : 1000);
  return grown == -1 ? 0 : 1;
}
