// A small SQL shell over the SQLite amalgamation, built both as a wasm32-wasi guest and
// natively so their outputs can be compared byte for byte.
//
//   sqlshell [--header] DBFILE [SQL]
//
// Runs every statement of SQL (or, without it, of all of stdin) in order. Rows are printed
// one per line, columns separated by '|': NULL as nothing, text as is, numbers as SQLite
// renders them, blobs as X'hex'. With --header, a statement that returns rows first prints
// its column names. The first failing statement stops the run: `error: MESSAGE` on stderr
// and exit status 1. Usage errors exit with 2.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite3.h"

static int Usage(void) {
  fputs("usage: sqlshell [--header] DBFILE [SQL]\n", stderr);
  return 2;
}

// Reads all of stdin into a NUL-terminated buffer the caller frees, or NULL.
static char* ReadStdin(void) {
  size_t cap = 1 << 16, len = 0;
  char* buf = malloc(cap);
  if (buf == NULL) return NULL;
  for (;;) {
    if (cap - len < 2) {
      char* grown = realloc(buf, cap * 2);
      if (grown == NULL) {
        free(buf);
        return NULL;
      }
      buf = grown;
      cap *= 2;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, stdin);
    if (n == 0) break;
    len += n;
  }
  if (ferror(stdin)) {
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

static void PrintValue(sqlite3_stmt* stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_NULL: break;
    case SQLITE_BLOB: {
      const unsigned char* p = sqlite3_column_blob(stmt, col);
      int n = sqlite3_column_bytes(stmt, col);
      fputs("X'", stdout);
      for (int i = 0; i < n; ++i) printf("%02X", p[i]);
      fputc('\'', stdout);
      break;
    }
    default: {
      // Integers and reals in SQLite's own rendering, so both builds agree.
      const unsigned char* text = sqlite3_column_text(stmt, col);
      fwrite(text, 1, (size_t)sqlite3_column_bytes(stmt, col), stdout);
      break;
    }
  }
}

// Steps one prepared statement to its end, printing any rows. Returns an SQLite code.
static int RunStatement(sqlite3_stmt* stmt, int header) {
  int cols = sqlite3_column_count(stmt);
  int rc;
  int first = 1;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (first && header) {
      for (int i = 0; i < cols; ++i) {
        if (i > 0) fputc('|', stdout);
        fputs(sqlite3_column_name(stmt, i), stdout);
      }
      fputc('\n', stdout);
    }
    first = 0;
    for (int i = 0; i < cols; ++i) {
      if (i > 0) fputc('|', stdout);
      PrintValue(stmt, i);
    }
    fputc('\n', stdout);
  }
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

// Runs every statement in sql; on the first failure prints it and returns 1.
static int RunScript(sqlite3* db, const char* sql, int header) {
  while (*sql != '\0') {
    sqlite3_stmt* stmt = NULL;
    const char* tail = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, &tail) != SQLITE_OK) {
      fprintf(stderr, "error: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    sql = tail;
    if (stmt == NULL) continue;  // only whitespace or a comment
    int rc = RunStatement(stmt, header);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) {
      fprintf(stderr, "error: %s\n", sqlite3_errmsg(db));
      return 1;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  int header = 0;
  int i = 1;
  if (i < argc && strcmp(argv[i], "--header") == 0) {
    header = 1;
    ++i;
  }
  if (argc - i < 1 || argc - i > 2) return Usage();
  const char* path = argv[i];
  const char* sql_arg = argc - i == 2 ? argv[i + 1] : NULL;

  char* input = NULL;
  if (sql_arg == NULL) {
    input = ReadStdin();
    if (input == NULL) {
      fputs("error: cannot read stdin\n", stderr);
      return 1;
    }
  }

  sqlite3* db = NULL;
  int status;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
    fprintf(stderr, "error: %s\n", db != NULL ? sqlite3_errmsg(db) : "out of memory");
    status = 1;
  } else {
    status = RunScript(db, sql_arg != NULL ? sql_arg : input, header);
  }
  if (sqlite3_close(db) != SQLITE_OK && status == 0) {
    fprintf(stderr, "error: %s\n", sqlite3_errmsg(db));
    status = 1;
  }
  free(input);
  if (fflush(stdout) != 0) status = 1;
  return status;
}
