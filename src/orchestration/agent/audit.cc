#include "orchestration/agent/audit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/sha256.h"
#include "base/units.h"

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

std::string HashOf(const std::string& text) { return Sha256Hex(text); }

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
  std::string got = h->get<std::string>();
  j.erase(h);
  std::string want = AuditHash(j);
  if (got != want) return "hash does not match the record (it was edited)";
  *hash = want;
  return "";
}

// The kernel's id of this boot ("" when it cannot be read): a head line written under
// another one was written before the machine last stopped.
const std::string& BootId() {
  static const std::string id = [] {
    // A /proc file says it is empty: read it rather than trust its size.
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string();
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }();
  return id;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The head file: two lines of kHeadLineBytes each (padded with spaces), rewritten in place.
constexpr size_t kHeadLineBytes = 256;
constexpr off_t kHeadSyncedAt = kHeadLineBytes;

struct Head {
  uint64_t seq = 0;  // the end line: the log's last record
  std::string hash = kGenesisHash;
  std::string boot;     // "" when unknown (a head from before group commit)
  uint64_t synced = 0;  // the synced line: records 1..synced are on disk
  std::string synced_hash = kGenesisHash;
};

std::string PadLine(const json& j) {
  std::string line = DumpJson(j);
  line.resize(kHeadLineBytes - 1, ' ');
  return line + "\n";
}
std::string EndLine(uint64_t seq, const std::string& hash) {
  return PadLine({{"boot", BootId()}, {"hash", hash}, {"seq", seq}});
}
std::string SyncedLine(uint64_t seq, const std::string& hash) {
  return PadLine({{"synced", seq}, {"synced_hash", hash}});
}

bool IsUnsigned(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned();
}
bool IsString(const json& j, const char* key) { return j.contains(key) && j[key].is_string(); }

// The head beside `path`; nullopt when there is none yet (missing, or empty: a crash while
// Open created it, before any record).
Result<std::optional<Head>> ReadHead(const std::string& path) {
  struct stat st {};
  if (lstat((path + ".head").c_str(), &st) != 0 && errno == ENOENT) return std::optional<Head>();
  auto bytes = ReadFile(path + ".head", 4096);
  if (!bytes) return bytes.error();
  std::string text(bytes->begin(), bytes->end());
  std::vector<std::string> lines;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    if (line.find_first_not_of(' ') != std::string::npos) lines.push_back(line);
  }
  if (lines.empty()) return std::optional<Head>();
  auto malformed = [&] {
    return MakeError(ErrorCode::kInvalidArgument, path + ".head is malformed");
  };
  if (lines.size() > 2) return malformed();
  auto end = ParseJson(lines[0]);
  if (!end || !end->is_object() || !IsUnsigned(*end, "seq") || !IsString(*end, "hash") ||
      (end->contains("boot") && !IsString(*end, "boot"))) {
    return malformed();
  }
  Head h;
  h.seq = (*end)["seq"].get<uint64_t>();
  h.hash = (*end)["hash"].get<std::string>();
  h.boot = end->value("boot", "");
  if (lines.size() == 1) {
    // A head from before group commit: replaced after each record was synced.
    h.synced = h.seq;
    h.synced_hash = h.hash;
    return std::optional<Head>(h);
  }
  auto synced = ParseJson(lines[1]);
  if (!synced || !synced->is_object() || !IsUnsigned(*synced, "synced") ||
      !IsString(*synced, "synced_hash")) {
    return malformed();
  }
  h.synced = (*synced)["synced"].get<uint64_t>();
  h.synced_hash = (*synced)["synced_hash"].get<std::string>();
  return std::optional<Head>(h);
}

// The hashes of the records a head names, gathered while walking the log.
struct HeadMarks {
  explicit HeadMarks(const Head& h) : head(h) {
    if (h.seq == 0) at_end = kGenesisHash;
    if (h.synced == 0) at_synced = kGenesisHash;
  }
  void Saw(uint64_t seq, const std::string& hash) {
    if (seq == head.seq) at_end = hash;
    if (seq == head.synced) at_synced = hash;
  }
  Head head;
  std::string at_end, at_synced;  // "" until seen
};

// Whether a log of `records` records agrees with its head (see audit.h): "" when it does,
// else why not. `note` says when it agrees only because the machine stopped since.
std::string CheckHead(const HeadMarks& m, uint64_t records, std::string* note) {
  const Head& h = m.head;
  std::string n = std::to_string(records);
  if (h.synced > records) {
    return "the log ends at record " + n + " but its head says records up to " +
           std::to_string(h.synced) + " were synced (records were removed from the end)";
  }
  if (m.at_synced != h.synced_hash) {
    return "record " + std::to_string(h.synced) +
           " is not the one its head says was synced (records were removed from the end and "
           "others written in their place)";
  }
  bool restarted = !h.boot.empty() && !BootId().empty() && h.boot != BootId();
  if (h.seq > records) {
    if (!restarted) {
      return "the log ends at record " + n + " but its head names record " + std::to_string(h.seq) +
             " (records were removed from the end)";
    }
    *note = "records " + std::to_string(records + 1) + ".." + std::to_string(h.seq) +
            " were not yet synced when the machine stopped and are gone (a crash within "
            "the sync window; this cannot be told from their removal)";
    return "";
  }
  if (m.at_end != h.hash) {
    return "record " + std::to_string(h.seq) +
           " is not the one its head names (records were removed from the end and others "
           "written in their place)";
  }
  if (h.seq + 1 < records) {
    if (!restarted) {
      return "the log ends at record " + n + " but its head names record " + std::to_string(h.seq) +
             " (records were added without it)";
    }
    *note = "the head names record " + std::to_string(h.seq) + " of " + n +
            " (its last write did not reach the disk before the machine stopped)";
  }
  return "";
}

Status PwriteAll(int fd, const std::string& data, off_t at, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd, data.data() + done, data.size() - done, at + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, Errno("cannot write " + path));
    done += static_cast<size_t>(n);
  }
  return OkStatus();
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
Status AuditLog::Follow(int fd, const std::string& path, Chain* c,
                        const std::function<void(uint64_t, const std::string&)>& saw) {
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
    if (saw) saw(c->seq, hash);
  }
  return OkStatus();
}

namespace {

// The compact JSON text of an object whose members are given already serialized
// ("\"key\":value"), two sorted lists merged in key order, with `hash_member` in its
// place when given: byte for byte what DumpJson writes for the same object.
std::string CanonicalText(const std::vector<std::pair<std::string, std::string>>& a,
                          const std::vector<std::pair<std::string, std::string>>& b,
                          const std::string* hash_member) {
  std::string text = "{";
  bool hash_done = hash_member == nullptr;
  auto add = [&](const std::string& key, const std::string& member) {
    if (!hash_done && std::string_view("hash") < key) {
      if (text.size() > 1) text += ',';
      text += *hash_member;
      hash_done = true;
    }
    if (text.size() > 1) text += ',';
    text += member;
  };
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      add(a[i].first, a[i].second);
      ++i;
    } else {
      add(b[j].first, b[j].second);
      ++j;
    }
  }
  if (!hash_done) {
    if (text.size() > 1) text += ',';
    text += *hash_member;
  }
  return text + "}";
}

}  // namespace

std::string AuditHash(const json& record) {
  if (!record.contains("hash")) return HashOf(DumpJson(record));
  json copy = record;
  copy.erase("hash");
  return HashOf(DumpJson(copy));
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                 const AuditOptions& options) {
  if (options.group_window_us > kMaxAuditGroupWindowUs) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "audit group window of " + std::to_string(options.group_window_us) +
                         " us is over the limit of " + std::to_string(kMaxAuditGroupWindowUs));
  }
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open audit log " + path));
  auto log = std::unique_ptr<AuditLog>(new AuditLog(path, fd, options));
  // Under the lock, so a tail another process is writing is never taken for a torn one,
  // and no one changes the head while it is checked and brought up to date.
  auto lock = FlockGuard::Take(fd, LOCK_EX, path);
  if (!lock) return lock.error();
  auto head = ReadHead(path);
  if (!head) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "audit log " + path + ": " + head.error().message +
                         " (run moat audit verify, then move it aside)");
  }
  std::optional<HeadMarks> marks;
  if (*head) marks.emplace(**head);
  // Walk the chain to its end: the tail must be intact to continue it.
  auto saw = [&](uint64_t seq, const std::string& hash) {
    if (marks) marks->Saw(seq, hash);
  };
  if (auto s = Follow(fd, path, &log->chain_, saw); !s) return s.error();
  Chain& c = log->chain_;
  // A log its head contradicts is refused like a broken record: extending it would
  // overwrite the evidence. A head behind or ahead within what a crash explains is fine.
  std::string note;
  std::string why = marks ? CheckHead(*marks, c.seq, &note)
                          : (c.seq == 0 ? "" : "it has records but no head file");
  if (!why.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "audit log " + path + " does not match its head: " + why +
                         " (run moat audit verify, then move it aside)");
  }
  std::string head_path = path + ".head";
  log->head_fd_ = open(head_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  struct stat st {};
  if (log->head_fd_ < 0 || fstat(log->head_fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kIo, Errno("cannot open " + head_path));
  }
  // The head must name the end, synced, before the next append: what a crash leaves is
  // then always one of the cases Verify accepts.
  bool current = *head && (*head)->seq == c.seq && (*head)->hash == c.prev &&
                 (*head)->synced == c.seq && (*head)->boot == BootId() &&
                 st.st_size == static_cast<off_t>(2 * kHeadLineBytes);
  if (!current) {
    if (!*head || (*head)->synced < c.seq) {
      if (c.seq > 0 && fdatasync(fd) != 0) {
        return MakeError(ErrorCode::kIo, Errno("cannot sync " + path));
      }
      if (c.seq > 0) ++log->syncs_;
    }
    std::string text = EndLine(c.seq, c.prev) + SyncedLine(c.seq, c.prev);
    if (auto s = PwriteAll(log->head_fd_, text, 0, head_path); !s) return s.error();
    if (ftruncate(log->head_fd_, static_cast<off_t>(text.size())) != 0 ||
        fdatasync(log->head_fd_) != 0) {
      return MakeError(ErrorCode::kIo, Errno("cannot sync " + head_path));
    }
    if (!*head) {
      // A new head file: its name must be on disk before records rely on it.
      int dir = open(Dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      bool synced = dir >= 0 && fsync(dir) == 0;
      if (dir >= 0) close(dir);
      if (!synced) return MakeError(ErrorCode::kIo, Errno("cannot sync the folder of " + path));
    }
  }
  if (options.sync == AuditSync::kGroup) {
    log->syncer_ = std::thread([raw = log.get()] { raw->SyncLoop(); });
  }
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return !syncing_; });
    if (sync_error_ && unsynced_ > 0 && head_fd_ >= 0) (void)SyncLocked(lock);
  }
  if (head_fd_ >= 0) close(head_fd_);
  if (fd_ >= 0) close(fd_);
}

Status AuditLog::WriteHeadEnd() {
  return PwriteAll(head_fd_, EndLine(chain_.seq, chain_.prev), 0, path_ + ".head");
}

Status AuditLog::SyncLocked(std::unique_lock<std::mutex>& lock) {
  syncing_ = true;
  // Every record up to the chain's end was written before the fdatasync below starts.
  uint64_t seq = chain_.seq;
  std::string hash = chain_.prev;
  unsynced_ = 0;
  unsynced_since_ns_ = 0;
  lock.unlock();
  int64_t t0 = NowNs();
  Status status = OkStatus();
  if (fdatasync(fd_) != 0) status = MakeError(ErrorCode::kIo, Errno("cannot sync " + path_));
  lock.lock();
  if (status) {
    // The synced line only moves forwards: another process may have synced further.
    auto file_lock = FlockGuard::Take(fd_, LOCK_EX, path_);
    if (!file_lock) {
      status = file_lock.error();
    } else {
      char buf[kHeadLineBytes + 1] = {};
      ssize_t n = pread(head_fd_, buf, kHeadLineBytes, kHeadSyncedAt);
      auto on_file = ParseJson(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0));
      bool behind = !on_file || !on_file->is_object() || !IsUnsigned(*on_file, "synced") ||
                    (*on_file)["synced"].get<uint64_t>() < seq;
      if (behind)
        status = PwriteAll(head_fd_, SyncedLine(seq, hash), kHeadSyncedAt, path_ + ".head");
    }
  }
  lock.unlock();
  if (status && fdatasync(head_fd_) != 0) {
    status = MakeError(ErrorCode::kIo, Errno("cannot sync " + path_ + ".head"));
  }
  lock.lock();
  ++syncs_;
  last_sync_ns_ = NowNs() - t0;
  syncing_ = false;
  if (!status && sync_error_) sync_error_ = status;
  done_cv_.notify_all();
  return status;
}

void AuditLog::SyncLoop() {
  const int64_t window = static_cast<int64_t>(options_.group_window_us) * 1000;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stop_ || unsynced_since_ns_ != 0; });
    if (stop_) return;
    // Start early enough that the first waiting record is on disk within the window,
    // judged by how long the last sync took; but never before half the window, so a slow
    // disk gets at most two syncs a window rather than one per handful of records.
    int64_t due = unsynced_since_ns_ + window - std::min(2 * last_sync_ns_, window / 2);
    work_cv_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(due)),
                        [&] { return stop_; });
    if (stop_) return;  // the destructor syncs what is left
    if (!sync_error_) {
      // Appends fail from now on; nothing more will be synced.
      work_cv_.wait(lock, [&] { return stop_; });
      return;
    }
    if (syncing_) {  // a Flush is syncing; see what it leaves
      done_cv_.wait(lock, [&] { return !syncing_; });
      continue;
    }
    if (unsynced_ == 0) continue;
    (void)SyncLocked(lock);
  }
}

Status AuditLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (!sync_error_) return sync_error_;
    if (syncing_) {
      // A sync under way may have begun before some of this process's records.
      done_cv_.wait(lock, [&] { return !syncing_; });
      continue;
    }
    if (unsynced_ == 0) return OkStatus();
    return SyncLocked(lock);
  }
}

Result<std::string> AuditLog::Append(json record) {
  if (!record.is_object()) return MakeError(ErrorCode::kInternal, "audit record is not an object");
  // Everything but seq, prev and ts is cut and serialized before any lock is taken, member
  // by member in key order (the canonical form: compact, keys sorted), so appenders from
  // many threads wait on each other only for the chaining, the hash and the write.
  record.erase("hash");
  record.erase("cut");
  record.erase("seq");
  record.erase("prev");
  {
    json cut = json::object();
    CutLongStrings(record, "", cut);
    if (!cut.empty()) record["cut"] = std::move(cut);
  }
  Pending p;
  p.has_ts = record.contains("ts");
  p.members.reserve(record.size() + 4);
  for (auto it = record.begin(); it != record.end(); ++it) {
    p.members.emplace_back(it.key(), DumpJson(json(it.key())) + ":" + DumpJson(it.value()));
  }
  // Group commit of the writes too: the record is queued, and one appender at a time (the
  // leader) writes every queued record in one write(2) and one head update, while the
  // others wait to be told theirs is written (or lead the next batch).
  std::unique_lock<std::mutex> q(queue_mu_);
  queue_.push_back(&p);
  bool wake = false;
  while (!p.done) {
    if (leading_) {
      p.cv.wait(q);  // woken when its batch is written, or to lead the next one
      continue;
    }
    leading_ = true;
    std::vector<Pending*> batch;
    if (options_.sync == AuditSync::kAlways) {  // one record, one sync
      queue_.erase(std::find(queue_.begin(), queue_.end(), &p));
      batch.push_back(&p);
    } else {
      batch.swap(queue_);
    }
    q.unlock();
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake = WriteBatch(batch) || wake;
    }
    q.lock();
    leading_ = false;
    for (Pending* b : batch) {
      b->done = true;
      if (b != &p) b->cv.notify_one();
    }
    // Records queued meanwhile: their first appender leads the next batch.
    if (!queue_.empty()) queue_.front()->cv.notify_one();
  }
  q.unlock();
  if (wake) work_cv_.notify_one();
  return std::move(p.result);
}

bool AuditLog::WriteBatch(const std::vector<Pending*>& batch) {
  auto fail_all = [&](const Error& e) {
    for (Pending* q : batch) {
      if (!q->resolved) {
        q->result = e;
        q->resolved = true;
      }
    }
    return false;
  };
  if (!sync_error_) {
    return fail_all(
        MakeError(sync_error_.error().code,
                  "an earlier sync of the audit log failed: " + sync_error_.error().message));
  }
  // Other processes may append to the same log: under the file lock, first follow what
  // they wrote since, then chain these records to the real end.
  auto file_lock = FlockGuard::Take(fd_, LOCK_EX, path_);
  if (!file_lock) return fail_all(file_lock.error());
  struct stat st {};
  if (fstat(fd_, &st) != 0)
    return fail_all(MakeError(ErrorCode::kIo, Errno("cannot stat " + path_)));
  // Records written to a log no longer at its path would be lost with it.
  struct stat at {};
  if (lstat(path_.c_str(), &at) != 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino) {
    return fail_all(MakeError(ErrorCode::kInvalidArgument,
                              "audit log " + path_ + " was replaced or removed while in use"));
  }
  if (static_cast<uint64_t>(st.st_size) < chain_.end) {
    return fail_all(
        MakeError(ErrorCode::kInvalidArgument,
                  "audit log " + path_ + " was cut short while in use (run moat audit verify)"));
  }
  if (auto s = Follow(fd_, path_, &chain_); !s) return fail_all(s.error());
  // Chain each record to the one before it; all are written with one write(2).
  Chain next = chain_;
  std::string out;
  std::vector<Pending*> written;
  std::vector<std::string> hashes;
  for (Pending* q : batch) {
    std::vector<std::pair<std::string, std::string>> own = {
        {"prev", "\"prev\":" + DumpJson(json(next.prev))},
        {"seq", "\"seq\":" + std::to_string(next.seq + 1)}};
    if (!q->has_ts) own.push_back({"ts", "\"ts\":" + DumpJson(json(UtcNowIso(true)))});
    std::string hash = HashOf(CanonicalText(q->members, own, nullptr));
    std::string hash_member = "\"hash\":\"" + hash + "\"";
    std::string line = CanonicalText(q->members, own, &hash_member) + "\n";
    if (line.size() > kMaxAuditRecordBytes) {
      q->result =
          MakeError(ErrorCode::kLimit, "an audit record of " + std::to_string(line.size()) +
                                           " bytes (after cutting long fields) is over 1 MiB");
      q->resolved = true;
      continue;
    }
    out += line;
    next.prev_of_last = next.prev;
    next.prev = hash;
    ++next.seq;
    next.end += line.size();
    written.push_back(q);
    hashes.push_back(std::move(hash));
  }
  if (written.empty()) return false;
  // Once write(2) returns, the records are in the page cache and survive a kill of this
  // process. (A short write leaves a torn line, which the next append drops.)
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(fd_, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail_all(MakeError(ErrorCode::kIo, Errno("cannot append to " + path_)));
    done += static_cast<size_t>(n);
  }
  chain_ = next;
  if (auto s = WriteHeadEnd(); !s) return fail_all(s.error());
  bool wake = false;
  if (options_.sync == AuditSync::kAlways) {
    // All under the lock: the record, its sync, the head's synced line.
    Status status = OkStatus();
    if (fdatasync(fd_) != 0) {
      status = MakeError(ErrorCode::kIo, Errno("cannot sync " + path_));
    } else if (auto w = PwriteAll(head_fd_, SyncedLine(chain_.seq, chain_.prev), kHeadSyncedAt,
                                  path_ + ".head");
               !w) {
      status = w;
    } else if (fdatasync(head_fd_) != 0) {
      status = MakeError(ErrorCode::kIo, Errno("cannot sync " + path_ + ".head"));
    }
    ++syncs_;
    if (!status) {
      sync_error_ = status;
      return fail_all(status.error());
    }
  } else {
    unsynced_ += written.size();
    if (unsynced_since_ns_ == 0) {
      unsynced_since_ns_ = NowNs();
      wake = true;  // once per window: the sync thread then sleeps until it is due
    }
  }
  for (size_t i = 0; i < written.size(); ++i) {
    written[i]->result = hashes[i];
    written[i]->resolved = true;
  }
  return wake;
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
  auto head = ReadHead(path);
  std::optional<HeadMarks> marks;
  if (head && *head) marks.emplace(**head);
  LineReader reader(fd, 0);
  std::string line, prev = kGenesisHash;
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
    prev = hash;
    ++seq;
    if (marks) marks->Saw(seq, hash);
    if (got == LineReader::Got::kTorn) break;
  }
  v.records = seq;
  if (!head) {
    v.first_bad = seq;
    v.why = "the head file is unreadable: " + head.error().message;
    return v;
  }
  if (!marks) {
    if (seq == 0) {
      v.ok = true;
      return v;
    }
    v.first_bad = seq;
    v.why = "the head file " + path + ".head is missing";
    return v;
  }
  std::string note;
  std::string why = CheckHead(*marks, seq, &note);
  if (!why.empty()) {
    v.first_bad = std::min(marks->head.seq, seq) + 1;
    v.why = why;
    return v;
  }
  if (!note.empty()) v.note = v.note.empty() ? note : v.note + "; " + note;
  v.ok = true;
  return v;
}

}  // namespace moat::agent
