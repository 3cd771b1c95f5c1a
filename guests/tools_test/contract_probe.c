// A test tool for the registry (tests/tools_test.cc): reads its arguments and answers
// according to "mode", including every way a tool can misbehave.
//   echo    {"ok":true,"content":ARGS}        error   a contract error result
//   garbage prints text that is no result     exit    exits 3 with a message on stderr
//   loop    never returns                     env     content: the value of $TOOL_ENV
//   ls      lists /workspace ("content":[names])  write   creates /workspace/made.txt
//   sleep   sleeps "n" milliseconds, then says so
//   badutf8 exits 3 with bytes that are not UTF-8 on stderr
//   badout  prints a result whose string is not UTF-8
//   escapes an error result whose code and message hold terminal escapes
//   deep    a result whose content is "n" arrays nested in one another (default 300000)
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
  } else if (strstr(args, "\"mode\":\"badutf8\"")) {
    fprintf(stderr, "bad \xff\xfe\xc3( bytes \xed\xa0\x80\n");
    return 3;
  } else if (strstr(args, "\"mode\":\"badout\"")) {
    printf("{\"ok\":true,\"content\":\"caf\xe9 \xc0\xaf\"}\n");
  } else if (strstr(args, "\"mode\":\"escapes\"")) {
    printf("{\"ok\":false,\"error\":{\"code\":\"\\u001b[8mhidden\\u009b2J\","
           "\"message\":\"\\u001b]52;c;ZXZpbA==\\u0007 \\u202eevil\"}}\n");
  } else if (strstr(args, "\"mode\":\"deep\"")) {
    const char* n = strstr(args, "\"n\":");
    long depth = n ? atol(n + 4) : 300000;
    fputs("{\"ok\":true,\"content\":", stdout);
    for (long i = 0; i < depth; ++i) putchar('[');
    for (long i = 0; i < depth; ++i) putchar(']');
    puts("}");
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
