#include "orchestration/agent/audit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

// A line without its newline.
constexpr uint64_t kMaxLineBytes = kMaxAuditRecordBytes - 1;
std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

std::string Dir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}
std::string Base(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string NowIso() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[80];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1'000'000);
  return buf;
}

struct Head {
  uint64_t seq = 0;
  std::string hash = kGenesisHash;
};

// Checks one line as record number `seq` following `prev`; returns why not, or "".
std::string CheckLine(const std::string& line, uint64_t seq, const std::string& prev,
                      std::string* hash) {
  auto parsed = ParseJson(line);
  if (!parsed) return "the line is " + parsed.error().message + " (a torn or edited line)";
  json j = std::move(*parsed);
  if (!j.is_object()) return "not a JSON object (a torn or edited line)";
  auto s = j.find("seq");
  if (s == j.end() || !s->is_number_unsigned() || s->get<uint64_t>() != seq) {
    return "seq is not " + std::to_string(seq) + " (a record was deleted, inserted or moved)";
  }
  auto p = j.find("prev");
  if (p == j.end() || !p->is_string() || p->get<std::string>() != prev) {
    return "prev does not match the previous record's hash (a record was deleted or moved)";
  }
  auto h = j.find("hash");
  if (h == j.end() || !h->is_string()) return "no hash";
  std::string want = AuditHash(j);
  if (h->get<std::string>() != want) return "hash does not match the record (it was edited)";
  *hash = want;
  return "";
}

Result<Head> ReadHead(const std::string& path) {
  auto bytes = ReadFile(path + ".head", 4096);
  if (!bytes) return bytes.error();
  auto parsed = ParseJson(std::string(bytes->begin(), bytes->end()));
  json j = parsed ? std::move(*parsed) : json();
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned() ||
      !j.contains("hash") || !j["hash"].is_string()) {
    return MakeError(ErrorCode::kInvalidArgument, path + ".head is malformed");
  }
  return Head{j["seq"].get<uint64_t>(), j["hash"].get<std::string>()};
}

Status WriteHead(const std::string& path, const Head& h) {
  std::string text = DumpJson(json({{"seq", h.seq}, {"hash", h.hash}})) + "\n";
  return WriteFileAtomic(Dir(path), Base(path) + ".head", text.data(), text.size(), 0600);
}

// flock(2) on an fd for a scope: the audit log's own fd, so every process that opens the
// log contends for the same lock; released when the guard goes.
class FlockGuard {
 public:
  static Result<FlockGuard> Take(int fd, int how, const std::string& path) {
    while (flock(fd, how) != 0) {
      if (errno != EINTR) return MakeError(ErrorCode::kIo, Errno("cannot lock " + path));
    }
    return FlockGuard(fd);
  }
  FlockGuard(FlockGuard&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FlockGuard& operator=(FlockGuard&&) = delete;
  ~FlockGuard() {
    if (fd_ >= 0) flock(fd_, LOCK_UN);
  }

 private:
  explicit FlockGuard(int fd) : fd_(fd) {}
  int fd_;
};

// Reads a log a line at a time from an offset, holding no more than kMaxLineBytes of a
// line: a longer one is refused without reading the rest of it.
class LineReader {
 public:
  enum class Got { kLine, kTorn, kTooLong, kEnd, kError };
  LineReader(int fd, uint64_t pos) : fd_(fd), read_at_(pos), chunk_(1 << 16) {}
  // The next line, without its newline; kTorn for an unterminated last line (in *line).
  Got Next(std::string* line) {
    line->clear();
    while (true) {
      if (off_ == len_) {
        ssize_t n = pread(fd_, chunk_.data(), chunk_.size(), static_cast<off_t>(read_at_));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Got::kError;
        if (n == 0) return line->empty() ? Got::kEnd : Got::kTorn;
        read_at_ += static_cast<uint64_t>(n);
        off_ = 0;
        len_ = static_cast<size_t>(n);
      }
      const char* start = chunk_.data() + off_;
      const void* nl = memchr(start, '\n', len_ - off_);
      size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) : len_ - off_;
      if (line->size() + take > kMaxLineBytes) return Got::kTooLong;
      line->append(start, take);
      off_ += take;
      if (nl) {
        ++off_;
        return Got::kLine;
      }
    }
  }

 private:
  int fd_;
  uint64_t read_at_;
  std::vector<char> chunk_;
  size_t off_ = 0, len_ = 0;
};

// Cuts every string of `v` longer than kMaxAuditFieldBytes (at a character boundary),
// noting each in `cut` by its path, with the full length and SHA-256.
void CutLongStrings(json& v, const std::string& path, json& cut) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() <= kMaxAuditFieldBytes) return;
    size_t keep = kMaxAuditFieldBytes;
    while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) --keep;
    cut[path] = {{"bytes", s.size()},
                 {"sha256", ToHex(Sha256(std::span<const uint8_t>(
                                reinterpret_cast<const uint8_t*>(s.data()), s.size())))}};
    v = s.substr(0, keep);
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      CutLongStrings(*it, path.empty() ? it.key() : path + "/" + it.key(), cut);
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      CutLongStrings(v[i], (path.empty() ? "" : path + "/") + std::to_string(i), cut);
    }
  }
}

}  // namespace

// Checks the records from byte c->end of the log to its end, each following the last,
// and moves `c` past them. An unterminated last line is a write cut short by a crash (the
// caller holds the lock, so no one is writing it now): it is cut off.
Status AuditLog::Follow(int fd, const std::string& path, Chain* c) {
  LineReader reader(fd, c->end);
  auto broken = [&](const std::string& why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "audit log " + path + " is broken at record " + std::to_string(c->seq + 1) +
                         ": " + why + " (run moat audit verify, then move it aside)");
  };
  std::string line;
  while (true) {
    LineReader::Got got = reader.Next(&line);
    if (got == LineReader::Got::kEnd) break;
    if (got == LineReader::Got::kError) {
      return MakeError(ErrorCode::kIo, Errno("cannot read audit log " + path));
    }
    if (got == LineReader::Got::kTooLong) return broken("longer than 1 MiB");
    if (got == LineReader::Got::kTorn) {
      if (ftruncate(fd, static_cast<off_t>(c->end)) != 0) {
        return MakeError(ErrorCode::kIo, Errno("cannot drop the torn tail of " + path));
      }
      break;
    }
    std::string hash;
    std::string why = CheckLine(line, c->seq + 1, c->prev, &hash);
    if (!why.empty()) return broken(why);
    c->prev_of_last = c->prev;
    c->prev = hash;
    ++c->seq;
    c->end += line.size() + 1;
  }
  return OkStatus();
}

std::string AuditHash(const json& record) {
  json copy = record;
  copy.erase("hash");
  std::string text = DumpJson(copy);
  return ToHex(
      Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open audit log " + path));
  auto log = std::unique_ptr<AuditLog>(new AuditLog(path, fd));
  // Under the lock, so a tail another process is writing is never taken for a torn one.
  auto lock = FlockGuard::Take(fd, LOCK_EX, path);
  if (!lock) return lock.error();
  // Walk the chain to its end: the tail must be intact to continue it.
  if (auto s = Follow(fd, path, &log->chain_); !s) return s.error();
  // The head must be current before the next append, or a crash in that append would
  // leave it two records behind. A new log gets one; a head one record behind (a crash
  // between a record and its head) is brought up to date. Anything else is left for
  // moat audit verify to name.
  const Chain& c = log->chain_;
  auto head = ReadHead(path);
  bool fresh = !head && c.seq == 0;
  bool lagging = head && head->seq + 1 == c.seq && head->hash == c.prev_of_last;
  if (fresh || lagging) {
    if (auto s = WriteHead(path, {c.seq, c.prev}); !s) return s.error();
  }
  return log;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) close(fd_);
}

Result<std::string> AuditLog::Append(json record) {
  if (!record.is_object()) return MakeError(ErrorCode::kInternal, "audit record is not an object");
  std::lock_guard<std::mutex> lock(mu_);
  // Other processes may append to the same log: under the file lock, first follow what
  // they wrote since, then chain this record to the real end.
  auto file_lock = FlockGuard::Take(fd_, LOCK_EX, path_);
  if (!file_lock) return file_lock.error();
  struct stat st {};
  if (fstat(fd_, &st) != 0) return MakeError(ErrorCode::kIo, Errno("cannot stat " + path_));
  // Records written to a log no longer at its path would be lost with it.
  struct stat at {};
  if (lstat(path_.c_str(), &at) != 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "audit log " + path_ + " was replaced or removed while in use");
  }
  if (static_cast<uint64_t>(st.st_size) < chain_.end) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "audit log " + path_ + " was cut short while in use (run moat audit verify)");
  }
  if (auto s = Follow(fd_, path_, &chain_); !s) return s.error();
  record["seq"] = chain_.seq + 1;
  record["prev"] = chain_.prev;
  if (!record.contains("ts")) record["ts"] = NowIso();
  record.erase("hash");
  record.erase("cut");
  json cut = json::object();
  CutLongStrings(record, "", cut);
  if (!cut.empty()) record["cut"] = std::move(cut);
  std::string hash = AuditHash(record);
  record["hash"] = hash;
  std::string line = DumpJson(record) + "\n";
  if (line.size() > kMaxAuditRecordBytes) {
    return MakeError(ErrorCode::kLimit, "an audit record of " + std::to_string(line.size()) +
                                            " bytes (after cutting long fields) is over 1 MiB");
  }
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, Errno("cannot append to " + path_));
    done += static_cast<size_t>(n);
  }
  if (fdatasync(fd_) != 0) return MakeError(ErrorCode::kIo, Errno("cannot sync " + path_));
  chain_.prev_of_last = chain_.prev;
  chain_.prev = hash;
  ++chain_.seq;
  chain_.end += line.size();
  if (auto s = WriteHead(path_, {chain_.seq, chain_.prev}); !s) return s.error();
  return hash;
}

AuditVerdict VerifyAudit(const std::string& path) {
  AuditVerdict v;
  // A shared lock: no append is half done (record written, head not yet) while we read.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    v.why = "cannot read " + path + (fd >= 0 ? " (not a regular file)" : "");
    return v;
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  auto lock = FlockGuard::Take(fd, LOCK_SH, path);
  if (!lock) {
    v.why = lock.error().message;
    return v;
  }
  LineReader reader(fd, 0);
  std::string line, prev = kGenesisHash, prev_of_last = kGenesisHash;
  uint64_t seq = 0;
  while (true) {
    LineReader::Got got = reader.Next(&line);
    if (got == LineReader::Got::kEnd) break;
    if (got == LineReader::Got::kError) {
      v.records = seq;
      v.why = Errno("cannot read " + path);
      return v;
    }
    if (got == LineReader::Got::kTooLong) {
      v.records = seq;
      v.first_bad = seq + 1;
      v.why = "record " + std::to_string(seq + 1) + " is longer than 1 MiB";
      return v;
    }
    std::string hash;
    std::string why = CheckLine(line, seq + 1, prev, &hash);
    if (!why.empty() && got == LineReader::Got::kTorn) {
      // Unterminated and invalid: a write cut short by a crash, not an edit. The next
      // Open drops it.
      v.note = "an incomplete last record (a write cut short) was ignored";
      break;
    }
    if (!why.empty()) {
      v.first_bad = seq + 1;
      v.records = seq;
      v.why = "record " + std::to_string(seq + 1) + ": " + why;
      return v;
    }
    prev_of_last = prev;
    prev = hash;
    ++seq;
    if (got == LineReader::Got::kTorn) break;
  }
  v.records = seq;
  auto head = ReadHead(path);
  if (!head) {
    if (seq == 0) {
      v.ok = true;
      return v;
    }
    v.first_bad = seq;
    v.why = "the head file is missing or unreadable: " + head.error().message;
    return v;
  }
  // The head is replaced after the record is synced, so a crash between the two leaves it
  // one record behind: that is the record in flight, not a removal.
  bool lagging = head->seq + 1 == seq && head->hash == prev_of_last;
  if ((head->seq != seq || head->hash != prev) && !lagging) {
    v.first_bad = std::min(head->seq, seq) + 1;
    v.why = "the log ends at record " + std::to_string(seq) + " but its head names record " +
            std::to_string(head->seq) + " (records were removed from the end, or added)";
    return v;
  }
  v.ok = true;
  return v;
}

}  // namespace moat::agent
