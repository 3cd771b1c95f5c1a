// sql: runs SQL on a SQLite database file in the workspace (or in memory), after importing
// CSV files into temporary tables; returns the last statement's rows as JSON and can write
// them to a CSV file. SQLite 3.53 (third_party/sqlite3) linked in; built by
// cmake/tool_sql.cmake. The contract is docs/tools.md; the arguments and the result are
// described for the model in sql.manifest.json.
//
// Files: SQLite reaches them through WASI like any guest, so ATTACH, VACUUM INTO and the
// journal are confined to the mounts and hidden paths look missing. The WASI layer has no
// byte-range locks: SQLite's wasi build locks with a `DB.lock` directory (unix-dotfile),
// which a call stopped by its fuel or time limit leaves behind; a lock older than
// kStaleLockSeconds is taken as such a leftover and removed. On a read-only mount the
// database is opened with immutable=1 (no lock, no journal) and writes are refused.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sqlite3.h"
#include "toolkit.h"

namespace {

using tk::json;

constexpr int64_t kDefaultMaxRows = 1000;
constexpr int64_t kMaxMaxRows = 100000;
constexpr size_t kMaxResultBytes = 4u << 20;  // JSON of the returned rows, about
constexpr size_t kMaxCellBytes = 1u << 20;    // one text or blob value in the JSON rows
constexpr size_t kMaxCsvBytes = 64u << 20;    // one CSV file to import
constexpr int kBusyTimeoutMs = 2000;
constexpr time_t kStaleLockSeconds = 30;            // the manifest's timeout
constexpr char kSqliteMagic[] = "SQLite format 3";  // and a NUL: 16 bytes

// --- small helpers ----------------------------------------------------------------------

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool FromBase64(std::string_view s, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      ++pad;
      continue;
    } else {
      return false;
    }
    if (pad) return false;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return pad <= 2;
}

// "a" → "\"a\"", doubling quotes: an SQL identifier.
std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Percent-escapes what a URI filename may not hold literally.
std::string UriPath(const std::string& path) {
  std::string out;
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x21 || c >= 0x7F) {
      char buf[4];
      snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// True when [p, end) holds no statement: only whitespace, comments and semicolons.
bool OnlyTrivia(const char* p, const char* end) {
  for (;;) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
                       *p == '\v' || *p == ';')) {
      ++p;
    }
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
      while (p < end && *p != '\n') ++p;
      continue;
    }
    if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
      std::string_view rest(p + 2, static_cast<size_t>(end - p - 2));
      size_t close = rest.find("*/");
      if (close == std::string_view::npos) return true;  // SQLite ignores it too
      p += 2 + close + 2;
      continue;
    }
    return p == end;
  }
}

// A one-byte delimiter from an argument object; "," when absent.
bool Delimiter(const json& obj, const char* where, char* out, tk::Outcome* bad) {
  *out = ',';
  auto it = obj.find("delimiter");
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string() || it->get_ref<const std::string&>().size() != 1) {
    *bad = tk::Fail("invalid_arguments",
                    std::string(where) + ".delimiter must be a single one-byte character");
    return false;
  }
  *out = it->get_ref<const std::string&>()[0];
  if (*out == '"' || *out == '\n' || *out == '\r' || *out == '\0') {
    *bad = tk::Fail("invalid_arguments",
                    std::string(where) + ".delimiter cannot be a quote, a line break or NUL");
    return false;
  }
  return true;
}

// --- CSV reading (RFC 4180) -------------------------------------------------------------

// Records of a CSV text, one at a time: fields separated by the delimiter, records by
// LF, CRLF or CR; a field in double quotes may hold delimiters, line breaks and "" for a
// quote. Blank lines are skipped. Lines are counted for error messages.
class CsvReader {
 public:
  CsvReader(std::string_view data, char delim) : d_(data), delim_(delim) {
    if (d_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a UTF-8 byte order mark
  }

  // 1: a record in fields[0, *count); 0: the end; -1: malformed (error()).
  int Next(std::vector<std::string>* fields, size_t* count) {
    while (pos_ < d_.size() && (d_[pos_] == '\n' || d_[pos_] == '\r')) EndLine();
    if (pos_ >= d_.size()) return 0;
    record_line_ = line_;
    size_t n = 0;
    for (;;) {
      if (n == fields->size()) fields->emplace_back();
      std::string& f = (*fields)[n++];
      f.clear();
      if (pos_ < d_.size() && d_[pos_] == '"') {
        uint64_t opened = line_;
        ++pos_;
        for (;;) {
          size_t q = d_.find('"', pos_);
          if (q == std::string_view::npos) {
            return Error(opened, "a quoted field is never closed (a missing \")");
          }
          for (size_t i = pos_; i < q; ++i) {
            if (d_[i] == '\n' || (d_[i] == '\r' && (i + 1 >= d_.size() || d_[i + 1] != '\n'))) {
              ++line_;
            }
          }
          f.append(d_.data() + pos_, q - pos_);
          pos_ = q + 1;
          if (pos_ < d_.size() && d_[pos_] == '"') {
            f.push_back('"');
            ++pos_;
            continue;
          }
          break;
        }
        if (pos_ < d_.size() && d_[pos_] != delim_ && d_[pos_] != '\n' && d_[pos_] != '\r') {
          return Error(line_,
                       "unexpected text after a closing quote (a quote inside a quoted "
                       "field must be doubled: \"\")");
        }
      } else {
        size_t start = pos_;
        while (pos_ < d_.size() && d_[pos_] != delim_ && d_[pos_] != '\n' && d_[pos_] != '\r') {
          if (d_[pos_] == '"') {
            return Error(line_,
                         "a quote inside an unquoted field (quote the whole field and "
                         "double the quote: \"a \"\"b\"\"\")");
          }
          ++pos_;
        }
        f.append(d_.data() + start, pos_ - start);
      }
      if (pos_ >= d_.size()) break;
      if (d_[pos_] == delim_) {
        ++pos_;
        continue;
      }
      EndLine();
      break;
    }
    *count = n;
    return 1;
  }

  uint64_t record_line() const { return record_line_; }
  const std::string& error() const { return error_; }

 private:
  void EndLine() {  // at '\n' or '\r'
    if (d_[pos_] == '\r' && pos_ + 1 < d_.size() && d_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }
  int Error(uint64_t line, const std::string& what) {
    error_ = "line " + std::to_string(line) + ": " + what;
    return -1;
  }

  std::string_view d_;
  char delim_;
  size_t pos_ = 0;
  uint64_t line_ = 1;
  uint64_t record_line_ = 1;
  std::string error_;
};

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// An integer as SQLite would print it back: optional '-', no leading zeros, fits int64
// (18 digits, to stay clear of the edge). "007" is text: leading zeros are data.
bool LooksInteger(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (!IsDigits(s) || s.size() > 18) return false;
  return s.size() == 1 || s[0] != '0';
}

// A decimal number: [sign] digits [. digits] [e [sign] digits], or with digits only after
// the point; no leading zeros before other digits, no inf/nan/hex.
bool LooksReal(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  size_t e = s.find_first_of("eE");
  std::string_view mant = s.substr(0, e);
  if (e != std::string_view::npos) {
    std::string_view exp = s.substr(e + 1);
    if (!exp.empty() && (exp[0] == '-' || exp[0] == '+')) exp.remove_prefix(1);
    if (!IsDigits(exp) || exp.size() > 4) return false;
  }
  size_t dot = mant.find('.');
  std::string_view ip = mant.substr(0, dot);
  std::string_view fp = dot == std::string_view::npos ? std::string_view() : mant.substr(dot + 1);
  if (ip.empty() && fp.empty()) return false;
  if (!ip.empty() && (!IsDigits(ip) || (ip.size() > 1 && ip[0] == '0'))) return false;
  if (dot != std::string_view::npos && !fp.empty() && !IsDigits(fp)) return false;
  return true;
}

enum class ColType { kInteger, kReal, kText };

struct Database {
  sqlite3* db = nullptr;
  std::string path;  // absolute guest path; empty for an in-memory database
  bool read_only = false;
  bool created = false;  // an empty file made by this call
  ~Database() {
    if (db) sqlite3_close_v2(db);
    struct stat st;
    if (created && tk::Stat(path, &st) == 0 && st.st_size == 0) unlink(path.c_str());
  }
};

std::string Errmsg(sqlite3* db) { return db ? sqlite3_errmsg(db) : "out of memory"; }

// Imports one CSV file into a new temporary table. Two passes over the text: the first
// checks it and finds each column's type, the second inserts.
tk::Outcome ImportCsv(sqlite3* db, const json& spec, size_t index, json* report) {
  std::string where = "csv[" + std::to_string(index) + "]";
  if (!spec.is_object()) return tk::Fail("invalid_arguments", where + " must be an object");
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    const std::string& k = it.key();
    if (k != "path" && k != "table" && k != "header" && k != "delimiter") {
      return tk::Fail("invalid_arguments", where + ": unknown property \"" + k + "\"");
    }
  }
  auto path_it = spec.find("path");
  auto table_it = spec.find("table");
  if (path_it == spec.end() || !path_it->is_string()) {
    return tk::Fail("invalid_arguments", where + ".path must be a string");
  }
  if (table_it == spec.end() || !table_it->is_string() ||
      table_it->get_ref<const std::string&>().empty() ||
      table_it->get_ref<const std::string&>().find('\0') != std::string::npos) {
    return tk::Fail("invalid_arguments", where + ".table must be a non-empty name");
  }
  bool header = true;
  if (auto h = spec.find("header"); h != spec.end() && !h->is_null()) {
    if (!h->is_boolean()) return tk::Fail("invalid_arguments", where + ".header must be a boolean");
    header = h->get<bool>();
  }
  char delim;
  tk::Outcome bad;
  if (!Delimiter(spec, where.c_str(), &delim, &bad)) return bad;
  const std::string& table = table_it->get_ref<const std::string&>();
  std::string path;
  if (!tk::ResolveArg(path_it->get_ref<const std::string&>(), &path, &bad)) return bad;

  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return tk::FromErrno(errno, path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return tk::Fail("not_a_file", tk::Display(path) + " is not a regular file");
  }
  std::string text;
  int err = tk::ReadUpTo(fd, kMaxCsvBytes + 1, &text);
  close(fd);
  if (err) return tk::FromErrno(err, path);
  if (text.size() > kMaxCsvBytes) {
    return tk::Fail("too_large", tk::Display(path) + " is larger than " +
                                     std::to_string(kMaxCsvBytes >> 20) + " MiB");
  }
  const std::string shown = tk::Display(path);
  if (text.find('\0') != std::string::npos || !tk::LooksLikeText(text.substr(0, 8192))) {
    return tk::Fail("csv_error", shown + " is not CSV text (it looks like a binary file)");
  }

  // Pass 1: shape and types.
  std::vector<std::string> fields;
  size_t n = 0;
  std::vector<std::string> names;
  std::vector<ColType> types;
  std::vector<bool> seen_value;
  uint64_t rows = 0;
  {
    CsvReader r(text, delim);
    bool first = true;
    for (;;) {
      int got = r.Next(&fields, &n);
      if (got < 0) return tk::Fail("csv_error", shown + ": " + r.error());
      if (got == 0) break;
      if (first) {
        first = false;
        for (size_t i = 0; i < n; ++i) {
          std::string name = header ? fields[i] : "";
          if (name.empty()) name = "column_" + std::to_string(i + 1);
          std::string base = name;
          for (int k = 2;; ++k) {  // duplicates get _2, _3, ... (case-insensitively)
            bool clash = false;
            for (const auto& o : names)
              clash = clash || sqlite3_stricmp(o.c_str(), name.c_str()) == 0;
            if (!clash) break;
            name = base + "_" + std::to_string(k);
          }
          names.push_back(name);
        }
        types.assign(n, ColType::kInteger);
        seen_value.assign(n, false);
        if (header) continue;
      }
      if (n != names.size()) {
        return tk::Fail("csv_error", shown + ": line " + std::to_string(r.record_line()) + ": " +
                                         std::to_string(n) + " fields, expected " +
                                         std::to_string(names.size()) +
                                         (header ? " (as in the header)" : " (as in line 1)"));
      }
      ++rows;
      for (size_t i = 0; i < n; ++i) {
        const std::string& v = fields[i];
        if (v.empty()) continue;
        seen_value[i] = true;
        if (types[i] == ColType::kInteger && !LooksInteger(v)) types[i] = ColType::kReal;
        if (types[i] == ColType::kReal && !LooksReal(v)) types[i] = ColType::kText;
      }
    }
    if (first) return tk::Fail("csv_error", shown + " is empty (no header and no rows)");
  }
  for (size_t i = 0; i < types.size(); ++i) {
    if (!seen_value[i]) types[i] = ColType::kText;
  }

  std::string create = "CREATE TEMP TABLE " + QuoteIdent(table) + "(";
  std::string insert = "INSERT INTO temp." + QuoteIdent(table) + " VALUES(";
  json cols = json::array();
  for (size_t i = 0; i < names.size(); ++i) {
    const char* type = types[i] == ColType::kInteger ? "INTEGER"
                       : types[i] == ColType::kReal  ? "REAL"
                                                     : "TEXT";
    create += (i ? ", " : "") + QuoteIdent(names[i]) + " " + type;
    insert += i ? ",?" : "?";
    cols.push_back({{"name", names[i]}, {"type", type}});
  }
  create += ")";
  insert += ")";
  auto fail_sql = [&](const std::string& what) {
    std::string msg = Errmsg(db);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return tk::Fail("csv_error", shown + ": cannot " + what + " table \"" + table + "\": " + msg);
  };
  if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return fail_sql("begin");
  if (sqlite3_exec(db, create.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail_sql("create");
  }
  sqlite3_stmt* ins = nullptr;
  if (sqlite3_prepare_v2(db, insert.c_str(), -1, &ins, nullptr) != SQLITE_OK) {
    return fail_sql("fill");
  }
  CsvReader r(text, delim);
  bool skip = header;
  while (r.Next(&fields, &n) == 1) {
    if (skip) {
      skip = false;
      continue;
    }
    for (size_t i = 0; i < n; ++i) {
      const std::string& v = fields[i];
      int col = static_cast<int>(i) + 1;
      if (v.empty() && types[i] != ColType::kText) {
        sqlite3_bind_null(ins, col);
      } else if (types[i] == ColType::kInteger) {
        sqlite3_bind_int64(ins, col, strtoll(v.c_str(), nullptr, 10));
      } else if (types[i] == ColType::kReal) {
        sqlite3_bind_double(ins, col, strtod(v.c_str(), nullptr));
      } else {
        sqlite3_bind_text(ins, col, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      }
    }
    if (sqlite3_step(ins) != SQLITE_DONE) {
      sqlite3_finalize(ins);
      return fail_sql("fill");
    }
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail_sql("fill");
  *report = {{"path", shown}, {"table", table}, {"rows", rows}, {"columns", cols}};
  return tk::Ok(nullptr);
}

// --- CSV writing ------------------------------------------------------------------------

// Streams rows to a new hidden file beside the target, renamed over it at the end.
class CsvWriter {
 public:
  ~CsvWriter() {
    if (fd_ >= 0) {
      close(fd_);
      unlink(tmp_.c_str());
    }
  }

  bool Open(const std::string& path, char delim, tk::Outcome* bad) {
    path_ = path;
    delim_ = delim;
    struct stat st;
    if (tk::Stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
      *bad = tk::Fail("not_a_file", tk::Display(path) + " exists and is not a regular file");
      return false;
    }
    for (int attempt = 0; attempt < 8 && fd_ < 0; ++attempt) {
      uint32_t nonce = 0;
      if (getentropy(&nonce, sizeof nonce) != 0) nonce = static_cast<uint32_t>(attempt) * 7919u;
      char suffix[16];
      snprintf(suffix, sizeof suffix, "%08x", nonce);
      tmp_ = tk::JoinPath(tk::Parent(path), "." + tk::BaseName(path) + ".moat-sql-" + suffix);
      fd_ = open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd_ < 0 && errno != EEXIST) {
        *bad = tk::FromErrno(errno, path, true);
        return false;
      }
    }
    if (fd_ < 0) {
      *bad = tk::Fail("io_error", tk::Display(path) + ": cannot create a temporary file");
      return false;
    }
    return true;
  }

  void Field(std::string_view v, bool first) {
    if (!first) buf_ += delim_;
    if (v.find_first_of(std::string{delim_, '"', '\n', '\r'}) == std::string_view::npos) {
      buf_ += v;
    } else {
      buf_ += '"';
      for (char c : v) {
        if (c == '"') buf_ += '"';
        buf_ += c;
      }
      buf_ += '"';
    }
  }

  bool EndRow(tk::Outcome* bad) {
    buf_ += '\n';
    ++rows_;
    return buf_.size() < (64u << 10) || Flush(bad);
  }

  bool Flush(tk::Outcome* bad) {
    if (int err = tk::WriteAll(fd_, buf_)) {
      *bad = tk::FromErrno(err, path_, true);
      return false;
    }
    buf_.clear();
    return true;
  }

  bool Finish(tk::Outcome* bad) {
    if (!Flush(bad)) return false;
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0 || rename(tmp_.c_str(), path_.c_str()) != 0) {
      int err = errno;
      unlink(tmp_.c_str());
      *bad = tk::FromErrno(err, path_, true);
      return false;
    }
    return true;
  }

  uint64_t rows() const { return rows_; }

 private:
  std::string path_, tmp_, buf_;
  char delim_ = ',';
  int fd_ = -1;
  uint64_t rows_ = 0;
};

// --- opening the database ---------------------------------------------------------------

tk::Outcome OpenDatabase(const std::string& arg, Database* d) {
  const int base = SQLITE_OPEN_NOMUTEX;
  // ATTACH opens with the main database's flags: CREATE lets it make new files.
  const int kReadWrite = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (arg.empty()) {
    if (sqlite3_open_v2(":memory:", &d->db, base | kReadWrite, nullptr) != SQLITE_OK) {
      return tk::Fail("io_error", "cannot open an in-memory database: " + Errmsg(d->db));
    }
    return tk::Ok(nullptr);
  }
  tk::Outcome bad;
  if (!tk::ResolveArg(arg, &d->path, &bad)) return bad;
  const std::string& path = d->path;
  const std::string shown = tk::Display(path);
  struct stat st;
  int e = tk::Stat(path, &st);
  if (e == 0) {
    if (S_ISDIR(st.st_mode)) return tk::Fail("not_a_file", shown + " is a directory");
    if (!S_ISREG(st.st_mode)) return tk::Fail("not_a_file", shown + " is not a regular file");
    int fd = open(path.c_str(), O_RDWR);
    if (fd >= 0) {
      d->read_only = false;
    } else if (errno == EPERM || errno == EROFS || errno == EACCES) {
      d->read_only = true;
      fd = open(path.c_str(), O_RDONLY);
      if (fd < 0) return tk::FromErrno(errno, path);
    } else {
      return tk::FromErrno(errno, path);
    }
    char head[16] = {};
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    if (got > 0 && memcmp(head, kSqliteMagic, static_cast<size_t>(got)) != 0) {
      return tk::Fail("sql_error", shown +
                                       ": file is not a database (no SQLite header; to query a CSV "
                                       "file, import it with the csv argument)");
    }
  } else if (e == ENOENT) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
      int err = errno;
      if (err == EPERM || err == EROFS || err == EACCES) {
        return tk::Fail("permission_denied",
                        shown +
                            " does not exist and cannot be created (the workspace is "
                            "read-only or the name is protected)");
      }
      return tk::FromErrno(err, path, true);
    }
    close(fd);
    d->created = true;
  } else {
    return tk::FromErrno(e, path);
  }

  int rc;
  if (d->read_only) {
    std::string uri = "file:" + UriPath(path) + "?immutable=1";
    rc = sqlite3_open_v2(uri.c_str(), &d->db, base | SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                         nullptr);
  } else {
    rc = sqlite3_open_v2(path.c_str(), &d->db, base | kReadWrite, nullptr);
  }
  if (rc != SQLITE_OK) return tk::Fail("sql_error", shown + ": " + Errmsg(d->db));
  sqlite3_busy_timeout(d->db, kBusyTimeoutMs);
  return tk::Ok(nullptr);
}

// A `DB.lock` directory left by a call that was stopped mid-transaction: removed when old.
bool BreakStaleLock(const Database& d) {
  if (d.path.empty() || d.read_only) return false;
  std::string lock = d.path + ".lock";
  struct stat st;
  if (tk::Lstat(lock, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (time(nullptr) - st.st_mtime < kStaleLockSeconds) return false;
  return rmdir(lock.c_str()) == 0;
}

// --- running statements -----------------------------------------------------------------

tk::Outcome Bind(sqlite3_stmt* st, const json& params, int statement) {
  int want = sqlite3_bind_parameter_count(st);
  if (static_cast<size_t>(want) != params.size()) {
    return tk::Fail("invalid_arguments", "statement " + std::to_string(statement) +
                                             " (the last) has " + std::to_string(want) +
                                             " placeholder(s) but " +
                                             std::to_string(params.size()) + " params were given");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const json& v = params[i];
    int idx = static_cast<int>(i) + 1;
    int rc = SQLITE_OK;
    if (v.is_null()) {
      rc = sqlite3_bind_null(st, idx);
    } else if (v.is_boolean()) {
      rc = sqlite3_bind_int(st, idx, v.get<bool>() ? 1 : 0);
    } else if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      rc = u <= static_cast<uint64_t>(INT64_MAX)
               ? sqlite3_bind_int64(st, idx, static_cast<sqlite3_int64>(u))
               : sqlite3_bind_double(st, idx, static_cast<double>(u));
    } else if (v.is_number_integer()) {
      rc = sqlite3_bind_int64(st, idx, v.get<int64_t>());
    } else if (v.is_number_float()) {
      rc = sqlite3_bind_double(st, idx, v.get<double>());
    } else if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      rc = sqlite3_bind_text64(st, idx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else if (v.is_object() && v.size() == 1 && v.contains("base64") && v["base64"].is_string()) {
      std::string bytes;
      if (!FromBase64(v["base64"].get_ref<const std::string&>(), &bytes)) {
        return tk::Fail("invalid_arguments",
                        "params[" + std::to_string(i) + "].base64 is not base64");
      }
      rc = sqlite3_bind_blob64(st, idx, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
    } else {
      return tk::Fail("invalid_arguments", "params[" + std::to_string(i) +
                                               "] must be a string, number, boolean, null or "
                                               "{\"base64\": ...}");
    }
    if (rc != SQLITE_OK) {
      return tk::Fail("sql_error",
                      "cannot bind params[" + std::to_string(i) + "]: " + sqlite3_errstr(rc));
    }
  }
  return tk::Ok(nullptr);
}

// One value of a result row as JSON; `cut` counts values shortened to kMaxCellBytes.
json Value(sqlite3_stmt* st, int col, size_t* bytes, uint64_t* cut) {
  switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER: *bytes += 20; return sqlite3_column_int64(st, col);
    case SQLITE_FLOAT: *bytes += 24; return sqlite3_column_double(st, col);
    case SQLITE_TEXT: {
      const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
      std::string_view s(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, col)));
      if (s.size() > kMaxCellBytes) {
        s = s.substr(0, tk::Utf8Prefix(s, kMaxCellBytes));
        ++*cut;
      }
      *bytes += s.size() + 2;
      return std::string(s);
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(st, col));
      size_t n = static_cast<size_t>(sqlite3_column_bytes(st, col));
      if (n > kMaxCellBytes) {
        n = kMaxCellBytes;
        ++*cut;
      }
      std::string b64 = Base64(p, n);
      *bytes += b64.size() + 14;
      return json{{"base64", std::move(b64)}};
    }
    default: *bytes += 4; return nullptr;
  }
}

// The text of a value in a CSV file: SQLite's own rendering of numbers, blobs in base64,
// NULL as an empty field.
std::string CsvText(sqlite3_stmt* st, int col) {
  switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL: return "";
    case SQLITE_BLOB:
      return Base64(static_cast<const unsigned char*>(sqlite3_column_blob(st, col)),
                    static_cast<size_t>(sqlite3_column_bytes(st, col)));
    default: {
      const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
      return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, col)));
    }
  }
}

tk::Outcome Sql(const json& j) {
  tk::Args args(j, {"database", "sql", "params", "csv", "max_rows", "export_csv"});
  std::string database = args.Str("database", false);
  std::string sql = args.Str("sql", true);
  int64_t max_rows = args.Int("max_rows", kDefaultMaxRows, 0, kMaxMaxRows);
  if (!args.ok()) return args.Error();
  if (j.contains("database") && !j["database"].is_null() && database.empty()) {
    return tk::Fail("invalid_arguments", "database is empty (omit it for an in-memory database)");
  }
  if (sql.find('\0') != std::string::npos) {
    return tk::Fail("invalid_arguments", "sql contains a NUL character");
  }
  json params = json::array();
  if (auto it = j.find("params"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return tk::Fail("invalid_arguments", "params must be an array");
    params = *it;
  }
  json csv = json::array();
  if (auto it = j.find("csv"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return tk::Fail("invalid_arguments", "csv must be an array");
    csv = *it;
  }
  const json* exp = nullptr;
  std::string export_path;
  bool export_header = true;
  char export_delim = ',';
  if (auto it = j.find("export_csv"); it != j.end() && !it->is_null()) {
    exp = &*it;
    if (!exp->is_object()) return tk::Fail("invalid_arguments", "export_csv must be an object");
    for (auto k = exp->begin(); k != exp->end(); ++k) {
      if (k.key() != "path" && k.key() != "header" && k.key() != "delimiter") {
        return tk::Fail("invalid_arguments", "export_csv: unknown property \"" + k.key() + "\"");
      }
    }
    auto p = exp->find("path");
    if (p == exp->end() || !p->is_string()) {
      return tk::Fail("invalid_arguments", "export_csv.path must be a string");
    }
    tk::Outcome bad;
    if (!tk::ResolveArg(p->get_ref<const std::string&>(), &export_path, &bad)) return bad;
    if (auto h = exp->find("header"); h != exp->end() && !h->is_null()) {
      if (!h->is_boolean()) {
        return tk::Fail("invalid_arguments", "export_csv.header must be a boolean");
      }
      export_header = h->get<bool>();
    }
    if (!Delimiter(*exp, "export_csv", &export_delim, &bad)) return bad;
  }

  Database d;
  if (tk::Outcome o = OpenDatabase(database, &d); !o.ok) return o;
  sqlite3* db = d.db;
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);  // no writable_schema tricks

  json imported = json::array();
  for (size_t i = 0; i < csv.size(); ++i) {
    json report;
    if (tk::Outcome o = ImportCsv(db, csv[i], i, &report); !o.ok) return o;
    imported.push_back(std::move(report));
  }

  const sqlite3_int64 changes_before = sqlite3_total_changes64(db);
  auto sql_fail = [&](int statement) {
    std::string msg = Errmsg(db) + " (statement " + std::to_string(statement) + ")";
    if (d.read_only && (sqlite3_errcode(db) & 0xFF) == SQLITE_READONLY) {
      return tk::Fail("permission_denied", msg + ": the workspace is mounted read-only, so " +
                                               tk::Display(d.path) + " cannot be changed");
    }
    if ((sqlite3_errcode(db) & 0xFF) == SQLITE_BUSY && !d.path.empty()) {
      msg += ": " + tk::Display(d.path) +
             ".lock exists: another call is using the database, "
             "or a call stopped by its limits left the lock behind; such a lock is removed "
             "once it is " +
             std::to_string(kStaleLockSeconds) + " s old, so retry then";
    }
    return tk::Fail("sql_error", msg);
  };

  json columns = json::array();
  json rows = json::array();
  bool truncated = false;
  uint64_t cut = 0;
  int statements = 0;
  CsvWriter writer;
  bool exported = false;
  const char* p = sql.data();
  const char* end = p + sql.size();
  while (!OnlyTrivia(p, end)) {
    sqlite3_stmt* st = nullptr;
    const char* tail = nullptr;
    // The length counts the string's terminating NUL: given a length without one, SQLite
    // copies the rest of the text before every statement (quadratic in a long script).
    const int with_nul = static_cast<int>(end - p) + 1;
    int rc = sqlite3_prepare_v2(db, p, with_nul, &st, &tail);
    if (rc == SQLITE_BUSY && BreakStaleLock(d)) {
      rc = sqlite3_prepare_v2(db, p, with_nul, &st, &tail);
    }
    if (rc != SQLITE_OK) return sql_fail(statements + 1);
    if (tail == nullptr || tail <= p) {
      sqlite3_finalize(st);
      break;
    }
    p = tail;
    if (st == nullptr) continue;
    const int number = ++statements;
    const bool last = OnlyTrivia(p, end);
    if (last) {
      if (tk::Outcome o = Bind(st, params, number); !o.ok) {
        sqlite3_finalize(st);
        return o;
      }
    } else if (sqlite3_bind_parameter_count(st) > 0) {
      sqlite3_finalize(st);
      return tk::Fail("invalid_arguments",
                      "statement " + std::to_string(number) +
                          " has placeholders, but params are bound only to the last statement");
    }
    const int ncol = last ? sqlite3_column_count(st) : 0;
    if (last) {
      for (int c = 0; c < ncol; ++c) {
        const char* name = sqlite3_column_name(st, c);
        columns.push_back(name ? name : "");
      }
      if (exp) {
        if (ncol == 0) {
          sqlite3_finalize(st);
          return tk::Fail("invalid_arguments",
                          "export_csv: the last statement returns no columns to export");
        }
        tk::Outcome bad;
        if (!writer.Open(export_path, export_delim, &bad)) {
          sqlite3_finalize(st);
          return bad;
        }
        exported = true;
      }
    }
    size_t bytes = 0;
    bool retried = false;
    bool header_written = false;
    for (;;) {
      rc = sqlite3_step(st);
      if (rc == SQLITE_BUSY && !retried && BreakStaleLock(d)) {
        retried = true;
        sqlite3_reset(st);
        continue;
      }
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return sql_fail(number);
      }
      if (!last) continue;
      if (exported) {
        tk::Outcome bad;
        if (export_header && !header_written) {
          for (int c = 0; c < ncol; ++c)
            writer.Field(columns[c].get_ref<const std::string&>(), c == 0);
          header_written = true;
          if (!writer.EndRow(&bad)) {
            sqlite3_finalize(st);
            return bad;
          }
        }
        for (int c = 0; c < ncol; ++c) writer.Field(CsvText(st, c), c == 0);
        if (!writer.EndRow(&bad)) {
          sqlite3_finalize(st);
          return bad;
        }
      }
      if (!truncated && static_cast<int64_t>(rows.size()) < max_rows && bytes < kMaxResultBytes) {
        json row = json::array();
        for (int c = 0; c < ncol; ++c) row.push_back(Value(st, c, &bytes, &cut));
        rows.push_back(std::move(row));
      } else {
        truncated = true;
        if (!exported) break;  // the rest is not needed
      }
    }
    sqlite3_finalize(st);
    if (last && exported && export_header && !header_written) {
      tk::Outcome bad;
      for (int c = 0; c < ncol; ++c) writer.Field(columns[c].get_ref<const std::string&>(), c == 0);
      if (!writer.EndRow(&bad)) return bad;
    }
  }
  if (!params.empty() && statements == 0) {
    return tk::Fail("invalid_arguments", "params were given but sql holds no statement");
  }

  json out = {{"columns", std::move(columns)},
              {"row_count", rows.size()},
              {"rows", std::move(rows)},
              {"truncated", truncated},
              {"changes", sqlite3_total_changes64(db) - changes_before},
              {"statements", statements},
              {"database", d.path.empty() ? ":memory:" : tk::Display(d.path)}};
  if (d.read_only) out["read_only"] = true;
  if (cut) out["values_cut"] = cut;
  if (!imported.empty()) out["imported"] = std::move(imported);
  if (exported) {
    uint64_t data_rows = writer.rows() - (export_header ? 1 : 0);
    tk::Outcome bad;
    if (!writer.Finish(&bad)) return bad;
    out["exported"] = {{"path", tk::Display(export_path)}, {"rows", data_rows}};
  }
  if (sqlite3_close(db) != SQLITE_OK) {
    return tk::Fail("sql_error", "cannot close the database: " + Errmsg(db));
  }
  d.db = nullptr;  // a database file this call created and left empty is removed
  return tk::Ok(std::move(out));
}

}  // namespace

int main() { return tk::Main(&Sql); }
