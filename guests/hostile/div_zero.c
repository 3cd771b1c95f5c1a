// Integer division by a zero the compiler cannot see.
#include <stdlib.h>
int main(int argc, char** argv) {
  volatile int zero = argc - 1;
  return 10 / zero;
}
