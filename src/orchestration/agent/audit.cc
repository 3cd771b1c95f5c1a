#include "orchestration/agent/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/fs.h"
#include "base/sha256.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxLineBytes = 1u << 20;

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
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "not a JSON object (a torn or edited line)";
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
  json j = json::parse(bytes->begin(), bytes->end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned() ||
      !j.contains("hash") || !j["hash"].is_string()) {
    return MakeError(ErrorCode::kInvalidArgument, path + ".head is malformed");
  }
  return Head{j["seq"].get<uint64_t>(), j["hash"].get<std::string>()};
}

Status WriteHead(const std::string& path, const Head& h) {
  std::string text = json({{"seq", h.seq}, {"hash", h.hash}}).dump() + "\n";
  return WriteFileAtomic(Dir(path), Base(path) + ".head", text.data(), text.size(), 0600);
}

}  // namespace

std::string AuditHash(const json& record) {
  json copy = record;
  copy.erase("hash");
  std::string text = copy.dump(-1, ' ', false, json::error_handler_t::replace);
  return ToHex(
      Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, Errno("cannot open audit log " + path));
  // Walk the chain to its end: the tail must be intact to continue it.
  std::ifstream in(path, std::ios::binary);
  std::string line, prev = kGenesisHash, prev_of_last = kGenesisHash;
  uint64_t seq = 0;
  uint64_t good_bytes = 0;
  while (std::getline(in, line)) {
    std::string hash;
    std::string why = CheckLine(line, seq + 1, prev, &hash);
    if (!why.empty() && in.eof()) {
      // An unterminated last line is a write cut short (a crash mid-append): drop it.
      if (ftruncate(fd, static_cast<off_t>(good_bytes)) != 0) {
        close(fd);
        return MakeError(ErrorCode::kIo, Errno("cannot drop the torn tail of " + path));
      }
      break;
    }
    if (!why.empty()) {
      close(fd);
      return MakeError(ErrorCode::kInvalidArgument,
                       "audit log " + path + " is broken at record " + std::to_string(seq + 1) +
                           ": " + why + " (run moat audit verify, then move it aside)");
    }
    prev_of_last = prev;
    prev = hash;
    ++seq;
    good_bytes += line.size() + 1;
  }
  // The head must be current before the next append, or a crash in that append would
  // leave it two records behind. A new log gets one; a head one record behind (a crash
  // between a record and its head) is brought up to date. Anything else is left for
  // moat audit verify to name.
  auto head = ReadHead(path);
  bool fresh = !head && seq == 0;
  bool lagging = head && head->seq + 1 == seq && head->hash == prev_of_last;
  if (fresh || lagging) {
    if (auto s = WriteHead(path, {seq, prev}); !s) {
      close(fd);
      return s.error();
    }
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, seq, prev));
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) close(fd_);
}

Result<std::string> AuditLog::Append(json record) {
  if (!record.is_object()) return MakeError(ErrorCode::kInternal, "audit record is not an object");
  std::lock_guard<std::mutex> lock(mu_);
  record["seq"] = seq_ + 1;
  record["prev"] = prev_;
  if (!record.contains("ts")) record["ts"] = NowIso();
  record.erase("hash");
  std::string hash = AuditHash(record);
  record["hash"] = hash;
  std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  if (line.size() > kMaxLineBytes) {
    return MakeError(ErrorCode::kLimit, "audit record larger than 1 MiB");
  }
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError(ErrorCode::kIo, Errno("cannot append to " + path_));
    done += static_cast<size_t>(n);
  }
  if (fdatasync(fd_) != 0) return MakeError(ErrorCode::kIo, Errno("cannot sync " + path_));
  ++seq_;
  prev_ = hash;
  if (auto s = WriteHead(path_, {seq_, prev_}); !s) return s.error();
  return hash;
}

AuditVerdict VerifyAudit(const std::string& path) {
  AuditVerdict v;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    v.why = "cannot read " + path;
    return v;
  }
  std::string line, prev = kGenesisHash, prev_of_last = kGenesisHash;
  uint64_t seq = 0;
  while (std::getline(in, line)) {
    if (line.size() > kMaxLineBytes) {
      v.first_bad = seq + 1;
      v.why = "record " + std::to_string(seq + 1) + " is longer than 1 MiB";
      return v;
    }
    std::string hash;
    std::string why = CheckLine(line, seq + 1, prev, &hash);
    if (!why.empty() && in.eof()) {
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
