// Drives moat's HTTP host API for tests/guest_http_test.cc. One mode per run:
//   fetch METHOD URL [HEADERS [BODY]]   one request; prints "status=N url=U bytes=B",
//                                      the headers, a blank line and the body; or
//                                      "error=CODE MESSAGE"
//   chunks URL SIZE [HEADERS]          reads the body SIZE bytes at a time, prints the
//                                      number of reads and the body
//   repeat URL N                       N requests (each closed), prints each code
//   hold URL N                         N requests never closed, prints each code
//   read URL N                         N whole fetches (moat_http_fetch), prints the
//                                      total body bytes
//   abuse                              hostile calls (bad pointers, handles, parts),
//                                      prints each result code on a line
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/http.h"

static int Fetch(int argc, char** argv) {
  const char* headers = argc > 4 ? argv[4] : NULL;
  const char* body = argc > 5 ? argv[5] : NULL;
  moat_http_result_t r;
  uint32_t rc = moat_http_fetch(argv[2], argv[3], headers, body, body ? strlen(body) : 0, &r);
  if (rc != MOAT_OK) {
    char why[1024];
    printf("error=%u %s\n", rc, moat_http_last_error(why, sizeof why));
    return 0;
  }
  printf("status=%u url=%s bytes=%zu\n%s\n", r.status, r.url, r.body_len, r.headers);
  fwrite(r.body, 1, r.body_len, stdout);
  moat_http_result_free(&r);
  return 0;
}

static uint32_t RequestWith(const char* url, const char* headers, moat_http_response_t* resp) {
  moat_http_request_t req = {
      "GET", 3, url, (uint32_t)strlen(url), headers, (uint32_t)strlen(headers), NULL, 0};
  return moat_http_request(&req, resp);
}

static uint32_t Request(const char* url, moat_http_response_t* resp) {
  return RequestWith(url, "", resp);
}

static int Chunks(const char* url, int size, const char* headers) {
  moat_http_response_t resp;
  uint32_t rc = RequestWith(url, headers, &resp);
  if (rc != MOAT_OK) {
    printf("error=%u\n", rc);
    return 0;
  }
  char* buf = malloc((size_t)size);
  char* all = malloc(resp.body_len + 1);
  size_t got = 0;
  int reads = 0;
  for (;;) {
    uint32_t n = 0;
    rc = moat_http_read(resp.handle, MOAT_PART_BODY, buf, (uint32_t)size, &n);
    if (rc != MOAT_OK || n == 0) break;
    if (n > (uint32_t)size || got + n > resp.body_len) {
      printf("overrun\n");
      return 1;
    }
    memcpy(all + got, buf, n);
    got += n;
    ++reads;
  }
  all[got] = '\0';
  printf("reads=%d rc=%u bytes=%zu\n%s\n", reads, rc, got, all);
  printf("close=%u close_again=%u\n", moat_http_close(resp.handle), moat_http_close(resp.handle));
  return 0;
}

static int Repeat(const char* url, int n, int close) {
  for (int i = 0; i < n; ++i) {
    moat_http_response_t resp;
    uint32_t rc = Request(url, &resp);
    printf("%u\n", rc);
    if (rc == MOAT_OK && close) moat_http_close(resp.handle);
  }
  return 0;
}

static int ReadAll(const char* url, int n) {
  size_t total = 0;
  for (int i = 0; i < n; ++i) {
    moat_http_result_t r;
    uint32_t rc = moat_http_fetch("GET", url, NULL, NULL, 0, &r);
    if (rc != MOAT_OK) {
      printf("error=%u\n", rc);
      return 1;
    }
    total += r.body_len;
    moat_http_result_free(&r);
  }
  printf("%zu\n", total);
  return 0;
}

static int Abuse(void) {
  moat_http_response_t resp;
  const char* url = "http://127.0.0.1:1/";
  moat_http_request_t good = {"GET", 3, url, (uint32_t)strlen(url), "", 0, NULL, 0};
  // The request struct itself past the end of memory, and one straddling its end.
  printf("%u\n", moat_http_request((const moat_http_request_t*)0xFFFFFFF0u, &resp));
  uintptr_t end = (uintptr_t)__builtin_wasm_memory_size(0) * 65536u;
  printf("%u\n", moat_http_request((const moat_http_request_t*)(end - 16), &resp));
  // A field pointing past the end of memory, and one whose length wraps around.
  moat_http_request_t bad = good;
  bad.url = (const char*)0xFFFFFF00u;
  bad.url_len = 0x200;
  printf("%u\n", moat_http_request(&bad, &resp));
  bad = good;
  bad.body = (const void*)0x10;
  bad.body_len = 0xFFFFFFF0u;
  printf("%u\n", moat_http_request(&bad, &resp));
  // The response struct outside memory.
  printf("%u\n", moat_http_request(&good, (moat_http_response_t*)0xFFFFFFFCu));
  // Header lines without a name.
  bad = good;
  bad.headers = ": value\n";
  bad.headers_len = 8;
  printf("%u\n", moat_http_request(&bad, &resp));
  // Reads and closes on handles that were never opened.
  uint32_t n = 0;
  char buf[16];
  printf("%u\n", moat_http_read(0, MOAT_PART_BODY, buf, sizeof buf, &n));
  printf("%u\n", moat_http_read(12345, MOAT_PART_BODY, buf, sizeof buf, &n));
  printf("%u\n", moat_http_close(7));
  // The error message into a buffer outside memory.
  uint32_t full = 0;
  printf("%u\n", moat_http_error((char*)0xFFFFFFF0u, 64, &full));
  char why[128];
  printf("last error: %s\n", moat_http_last_error(why, sizeof why));
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "fetch") == 0) return Fetch(argc, argv);
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "chunks") == 0) {
    return Chunks(argv[2], atoi(argv[3]), argc == 5 ? argv[4] : "");
  }
  if (argc == 4 && strcmp(argv[1], "repeat") == 0) return Repeat(argv[2], atoi(argv[3]), 1);
  if (argc == 4 && strcmp(argv[1], "hold") == 0) return Repeat(argv[2], atoi(argv[3]), 0);
  if (argc == 4 && strcmp(argv[1], "read") == 0) return ReadAll(argv[2], atoi(argv[3]));
  if (argc == 2 && strcmp(argv[1], "abuse") == 0) return Abuse();
  fprintf(stderr, "usage: http_probe fetch|chunks|repeat|hold|read|abuse ...\n");
  return 2;
}
