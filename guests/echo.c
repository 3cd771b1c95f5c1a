// Prints its arguments and selected environment, then copies stdin to stdout.
// Exits with the code given by --exit N.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  int code = 0;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc) code = atoi(argv[i + 1]);
    printf("arg[%d]=%s\n", i, argv[i]);
  }
  const char* v = getenv("GREETING");
  printf("GREETING=%s\n", v ? v : "(unset)");
  const char* secret = getenv("HOME");
  printf("HOME=%s\n", secret ? secret : "(unset)");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
  fflush(stdout);
  fprintf(stderr, "to stderr\n");
  return code;
}
