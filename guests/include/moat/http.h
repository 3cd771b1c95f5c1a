/* moat's HTTP host API for guests (wasm32, C or C++).
 *
 * WASI preview1 has no sockets: a tool reaches the network only through these imports,
 * and the host checks every request against the run's egress policy (see
 * docs/architecture.md, "Network egress"). Secrets are written as {{secret:NAME}} in a
 * header value, the URL's path or query, or the body; the host substitutes them for
 * hosts they are bound to, and their values never reach guest memory.
 *
 * The whole exchange happens in moat_http_request; the response stays in the host and is
 * read in chunks with moat_http_read. For most uses moat_http_fetch below does it all:
 *
 *   moat_http_result_t r;
 *   if (moat_http_fetch("GET", "https://api.example.com/v1/items", "Accept: application/json",
 *                       NULL, 0, &r) == MOAT_OK) {
 *     ... r.status, r.body (NUL-terminated), r.body_len ...
 *     moat_http_result_free(&r);
 *   } else {
 *     char why[256];
 *     puts(moat_http_last_error(why, sizeof why));
 *   }
 */
#ifndef MOAT_HTTP_H
#define MOAT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results of every call. */
enum {
  MOAT_OK = 0,
  MOAT_EDENIED = 1, /* the policy refused it: URL, method, address or secret */
  MOAT_ELIMIT = 2,  /* a size, count, rate or time limit */
  MOAT_EINVAL = 3,  /* a malformed request: URL, header, method */
  MOAT_ENET = 4,    /* the network failed: DNS, connection, TLS */
  MOAT_EBADF = 5,   /* no open response with that handle */
  MOAT_EFAULT = 6,  /* a pointer or length outside memory */
  MOAT_ENOSYS = 7   /* this host has no network support */
};

/* Parts of a response for moat_http_read. */
enum { MOAT_PART_BODY = 0, MOAT_PART_HEADERS = 1, MOAT_PART_URL = 2 };

typedef struct {
  const char* method; /* "GET", "POST", ... */
  uint32_t method_len;
  const char* url;
  uint32_t url_len;
  const char* headers; /* "Name: value" lines separated by "\n" or "\r\n"; may be empty */
  uint32_t headers_len;
  const void* body;
  uint32_t body_len;
} moat_http_request_t;

typedef struct {
  uint32_t status;      /* HTTP status of the final response (after redirects) */
  uint32_t handle;      /* for moat_http_read and moat_http_close */
  uint32_t headers_len; /* bytes of the headers part: "name: value\r\n" lines, names lower case */
  uint32_t body_len;    /* bytes of the body */
  uint32_t url_len;     /* bytes of the final URL */
} moat_http_response_t;

#if defined(__wasm32__) && defined(__cplusplus)
static_assert(sizeof(moat_http_request_t) == 32, "wasm32 layout");
static_assert(sizeof(moat_http_response_t) == 20, "wasm32 layout");
#elif defined(__wasm32__)
_Static_assert(sizeof(moat_http_request_t) == 32, "wasm32 layout");
_Static_assert(sizeof(moat_http_response_t) == 20, "wasm32 layout");
#endif

#define MOAT_HTTP_IMPORT(name) __attribute__((import_module("moat"), import_name(#name)))

/* Sends the request and receives the whole response (up to the run's limits). */
uint32_t moat_http_request(const moat_http_request_t* request, moat_http_response_t* response)
    MOAT_HTTP_IMPORT(http_request);
/* The next bytes of one part, at most `len` (and 1 MiB); *nread is 0 at the end. */
uint32_t moat_http_read(uint32_t handle, uint32_t part, void* buf, uint32_t len, uint32_t* nread)
    MOAT_HTTP_IMPORT(http_read);
/* Frees the host's copy of a response. */
uint32_t moat_http_close(uint32_t handle) MOAT_HTTP_IMPORT(http_close);
/* The message of the last failed call, cut to `len` bytes; *full_len is its length. */
uint32_t moat_http_error(char* buf, uint32_t len, uint32_t* full_len) MOAT_HTTP_IMPORT(http_error);

/* ---- Helpers ---------------------------------------------------------------------- */

typedef struct {
  uint32_t status;
  char* headers; /* NUL-terminated, "name: value\r\n" lines */
  size_t headers_len;
  char* body; /* NUL-terminated (the body itself may hold NULs) */
  size_t body_len;
  char* url; /* the final URL, NUL-terminated */
} moat_http_result_t;

static inline uint32_t moat_http_read_part_(uint32_t handle, uint32_t part, size_t len,
                                            char** out) {
  char* buf = (char*)malloc(len + 1);
  if (buf == NULL) return MOAT_ELIMIT;
  size_t got = 0;
  while (got < len) {
    uint32_t n = 0;
    uint32_t rc = moat_http_read(handle, part, buf + got, (uint32_t)(len - got), &n);
    if (rc != MOAT_OK) {
      free(buf);
      return rc;
    }
    if (n == 0) break;
    got += n;
  }
  buf[got] = '\0';
  *out = buf;
  return MOAT_OK;
}

static inline void moat_http_result_free(moat_http_result_t* r) {
  free(r->headers);
  free(r->body);
  free(r->url);
  memset(r, 0, sizeof *r);
}

/* One request, the whole response in `out` (free it with moat_http_result_free).
 * `headers` may be NULL; `body` may be NULL when body_len is 0. */
static inline uint32_t moat_http_fetch(const char* method, const char* url, const char* headers,
                                       const void* body, size_t body_len,
                                       moat_http_result_t* out) {
  memset(out, 0, sizeof *out);
  moat_http_request_t req;
  req.method = method;
  req.method_len = (uint32_t)strlen(method);
  req.url = url;
  req.url_len = (uint32_t)strlen(url);
  req.headers = headers != NULL ? headers : "";
  req.headers_len = headers != NULL ? (uint32_t)strlen(headers) : 0;
  req.body = body;
  req.body_len = (uint32_t)body_len;
  moat_http_response_t resp;
  uint32_t rc = moat_http_request(&req, &resp);
  if (rc != MOAT_OK) return rc;
  out->status = resp.status;
  out->headers_len = resp.headers_len;
  out->body_len = resp.body_len;
  rc = moat_http_read_part_(resp.handle, MOAT_PART_HEADERS, resp.headers_len, &out->headers);
  if (rc == MOAT_OK) rc = moat_http_read_part_(resp.handle, MOAT_PART_BODY, resp.body_len, &out->body);
  if (rc == MOAT_OK) rc = moat_http_read_part_(resp.handle, MOAT_PART_URL, resp.url_len, &out->url);
  moat_http_close(resp.handle);
  if (rc != MOAT_OK) moat_http_result_free(out);
  return rc;
}

/* The last failure's message in `buf` (NUL-terminated, cut to fit). */
static inline const char* moat_http_last_error(char* buf, size_t len) {
  uint32_t full = 0;
  if (len == 0) return "";
  if (moat_http_error(buf, (uint32_t)(len - 1), &full) != MOAT_OK) full = 0;
  buf[full < len - 1 ? full : len - 1] = '\0';
  return buf;
}

#ifdef __cplusplus
}
#endif

#endif /* MOAT_HTTP_H */
