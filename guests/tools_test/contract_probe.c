// A test tool for the registry (tests/tools_test.cc): reads its arguments and answers
// according to "mode", including every way a tool can misbehave.
//   echo    {"ok":true,"content":ARGS}        error   a contract error result
//   garbage prints text that is no result     exit    exits 3 with a message on stderr
//   loop    never returns                     env     content: the value of $TOOL_ENV
//   ls      lists /workspace ("content":[names])  write   creates /workspace/made.txt
//   sleep   sleeps "n" milliseconds, then says so
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char args[1 << 20];

int main(void) {
  size_t n = fread(args, 1, sizeof args - 1, stdin);
  args[n] = '\0';
  if (strstr(args, "\"mode\":\"garbage\"")) {
    printf("this is not JSON\n");
  } else if (strstr(args, "\"mode\":\"error\"")) {
    printf("{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"nothing here\"}}\n");
  } else if (strstr(args, "\"mode\":\"exit\"")) {
    fprintf(stderr, "giving up\n");
    return 3;
  } else if (strstr(args, "\"mode\":\"loop\"")) {
    for (volatile unsigned i = 0;; ++i) {
    }
  } else if (strstr(args, "\"mode\":\"sleep\"")) {
    const char* n = strstr(args, "\"n\":");
    long ms = n ? atol(n + 4) : 10;
    struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&req, NULL);
    printf("{\"ok\":true,\"content\":\"slept %ld ms\"}\n", ms);
  } else if (strstr(args, "\"mode\":\"env\"")) {
    const char* v = getenv("TOOL_ENV");
    printf("{\"ok\":true,\"content\":\"%s\"}\n", v ? v : "(unset)");
  } else if (strstr(args, "\"mode\":\"ls\"")) {
    DIR* d = opendir("/workspace");
    if (!d) {
      printf("{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"no workspace\"}}\n");
      return 0;
    }
    printf("{\"ok\":true,\"content\":[");
    const char* sep = "";
    struct dirent* e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      printf("%s\"%s\"", sep, e->d_name);
      sep = ",";
    }
    printf("]}\n");
    closedir(d);
  } else if (strstr(args, "\"mode\":\"write\"")) {
    FILE* f = fopen("/workspace/made.txt", "w");
    if (!f) {
      printf("{\"ok\":false,\"error\":{\"code\":\"permission_denied\",\"message\":\"cannot write\"}}\n");
      return 0;
    }
    fputs("made", f);
    fclose(f);
    printf("{\"ok\":true,\"content\":\"written\"}\n");
  } else {
    printf("{\"ok\":true,\"content\":%s}\n", args);
  }
  return 0;
}
