#include "orchestration/agent/session_store.h"

#include <algorithm>

#include <sqlite3.h>
#include <sys/random.h>
#include <time.h>

#include <optional>
#include <set>

#include "base/fs.h"
#include "base/json_text.h"
#include "base/units.h"

namespace moat::agent {
namespace {

using json = nlohmann::json;

Error DbError(sqlite3* db, const std::string& what) {
  return MakeError(ErrorCode::kIo, what + ": " + sqlite3_errmsg(db));
}

// A prepared statement, finalised on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int c) {
    const unsigned char* t = sqlite3_column_text(s_, c);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, c)) : "";
  }
  int64_t Int(int c) { return sqlite3_column_int64(s_, c); }
  bool IsText(int c) { return sqlite3_column_type(s_, c) == SQLITE_TEXT; }
  bool IsInt(int c) { return sqlite3_column_type(s_, c) == SQLITE_INTEGER; }
  double Real(int c) { return sqlite3_column_double(s_, c); }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

std::optional<Message::Role> RoleOf(const std::string& s) {
  if (s == "system") return Message::Role::kSystem;
  if (s == "user") return Message::Role::kUser;
  if (s == "assistant") return Message::Role::kAssistant;
  if (s == "tool") return Message::Role::kTool;
  return std::nullopt;
}

// The tool calls of a stored message (the JSON array Append writes), or why they are not.
Result<std::vector<ToolCall>> ParseCalls(const std::string& text) {
  auto bad = [](const std::string& why) { return MakeError(ErrorCode::kInvalidArgument, why); };
  auto parsed = ParseJson(text);
  if (!parsed) return bad("tool_calls is " + parsed.error().message);
  json calls = std::move(*parsed);
  if (!calls.is_array()) return bad("tool_calls is not a JSON array");
  std::vector<ToolCall> out;
  for (size_t i = 0; i < calls.size(); ++i) {
    const json& c = calls[i];
    std::string which = "tool call " + std::to_string(i + 1);
    if (!c.is_object()) return bad(which + " is not an object");
    ToolCall call;
    for (const char* field : {"id", "name", "arguments"}) {
      auto f = c.find(field);
      if (f == c.end() || !f->is_string()) return bad(which + " has no string " + field);
    }
    call.id = c["id"].get<std::string>();
    call.name = c["name"].get<std::string>();
    call.arguments = c["arguments"].get<std::string>();
    out.push_back(std::move(call));
  }
  return out;
}

// A count as SQLite keeps it: at most the largest signed value, never wrapped negative.
int64_t Stored(uint64_t n) {
  return n > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(n);
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sessions(
  id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  workspace TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, title TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
  session_id TEXT NOT NULL REFERENCES sessions(id), seq INTEGER NOT NULL,
  role TEXT NOT NULL, content TEXT NOT NULL, tool_calls TEXT NOT NULL,
  tool_call_id TEXT NOT NULL, tool_name TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY(session_id, seq));
CREATE TABLE IF NOT EXISTS runs(
  session_id TEXT NOT NULL REFERENCES sessions(id), seq INTEGER NOT NULL, stop TEXT NOT NULL,
  message TEXT NOT NULL, steps INTEGER, tool_calls INTEGER, input_tokens INTEGER,
  output_tokens INTEGER, cost_usd REAL, fuel INTEGER, wall_us INTEGER, ended_at TEXT NOT NULL,
  PRIMARY KEY(session_id, seq));
CREATE TABLE IF NOT EXISTS taint(
  session_id TEXT NOT NULL REFERENCES sessions(id), seq INTEGER NOT NULL, kind TEXT NOT NULL,
  source TEXT NOT NULL, tool TEXT NOT NULL, step INTEGER NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY(session_id, seq));
)sql";

}  // namespace

std::string_view RoleName(Message::Role r) {
  switch (r) {
    case Message::Role::kSystem: return "system";
    case Message::Role::kUser: return "user";
    case Message::Role::kAssistant: return "assistant";
    case Message::Role::kTool: return "tool";
  }
  return "user";
}

Result<std::unique_ptr<SessionStore>> SessionStore::Open(const std::string& path) {
  // Setting up the database (the switch to WAL, the schema) is not covered by SQLite's
  // busy wait: processes opening one store at once take turns on PATH.lock for it.
  auto setup_lock = FileLock::Acquire(path + ".lock");
  if (!setup_lock) return setup_lock.error();
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK) {
    Error e = MakeError(ErrorCode::kIo, "cannot open " + path + ": " +
                                            (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return e;
  }
  auto store = std::unique_ptr<SessionStore>(new SessionStore(db));
  sqlite3_busy_timeout(db, 5000);
  // WAL: a killed writer leaves the database as of its last commit.
  char* err = nullptr;
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                   nullptr, nullptr, &err) != SQLITE_OK ||
      sqlite3_exec(db, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return MakeError(ErrorCode::kIo, "session store " + path + ": " + m);
  }
  return store;
}

SessionStore::~SessionStore() { sqlite3_close(db_); }

Result<std::string> SessionStore::Create(const std::string& workspace, const std::string& provider,
                                         const std::string& model, const std::string& title) {
  unsigned char raw[6];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw)
    return MakeError(ErrorCode::kIo, "getrandom failed");
  std::string id;
  for (unsigned char c : raw) {
    id += "0123456789abcdef"[c >> 4];
    id += "0123456789abcdef"[c & 15];
  }
  std::string now = UtcNowIso();
  Stmt s(db_, "INSERT INTO sessions VALUES(?,?,?,?,?,?,?)");
  if (!s.ok()) return DbError(db_, "create session");
  s.Bind(1, id)
      .Bind(2, now)
      .Bind(3, now)
      .Bind(4, workspace)
      .Bind(5, provider)
      .Bind(6, model)
      .Bind(7, title.substr(0, 200));
  if (s.Step() != SQLITE_DONE) return DbError(db_, "create session");
  return id;
}

Status SessionStore::Append(const std::string& session, const Message& m) {
  json calls = json::array();
  for (const ToolCall& c : m.tool_calls) {
    calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
  }
  std::string now = UtcNowIso();
  // One transaction: the message and the session's update time together.
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return DbError(db_, "append message");
  }
  Stmt s(db_,
         "INSERT INTO messages SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7 "
         "FROM messages WHERE session_id = ?1");
  Stmt u(db_, "UPDATE sessions SET updated_at = ?2 WHERE id = ?1");
  bool ok = s.ok() && u.ok();
  if (ok) {
    s.Bind(1, session).Bind(2, std::string(RoleName(m.role))).Bind(3, m.content);
    s.Bind(4, DumpJson(calls)).Bind(5, m.tool_call_id);
    s.Bind(6, m.tool_name).Bind(7, now);
    u.Bind(1, session).Bind(2, now);
    ok = s.Step() == SQLITE_DONE && u.Step() == SQLITE_DONE;
  }
  if (!ok) {
    Error e = DbError(db_, "append message");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return DbError(db_, "append message");
  }
  return OkStatus();
}

Status SessionStore::RecordRun(const std::string& session, const RunSummary& r) {
  auto run = BeginRun(session);
  if (!run) return run.error();
  return UpdateRun(session, *run, r);
}

Result<int64_t> SessionStore::BeginRun(const std::string& session) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return DbError(db_, "record run");
  }
  Stmt s(db_,
         "INSERT INTO runs SELECT ?1, COALESCE(MAX(seq), 0) + 1, 'running', '', 0, 0, 0, 0, 0.0, "
         "0, 0, ?2 FROM runs WHERE session_id = ?1");
  Stmt q(db_, "SELECT MAX(seq) FROM runs WHERE session_id = ?1");
  bool ok = s.ok() && q.ok();
  int64_t seq = 0;
  if (ok) {
    s.Bind(1, session).Bind(2, UtcNowIso());
    q.Bind(1, session);
    ok = s.Step() == SQLITE_DONE && q.Step() == SQLITE_ROW;
    if (ok) seq = q.Int(0);
  }
  if (!ok || seq <= 0) {
    Error e = DbError(db_, "record run");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return DbError(db_, "record run");
  }
  return seq;
}

Status SessionStore::UpdateRun(const std::string& session, int64_t run, const RunSummary& r) {
  Stmt s(db_,
         "UPDATE runs SET stop = ?3, message = ?4, steps = ?5, tool_calls = ?6, "
         "input_tokens = ?7, output_tokens = ?8, cost_usd = ?9, fuel = ?10, wall_us = ?11, "
         "ended_at = ?12 WHERE session_id = ?1 AND seq = ?2");
  if (!s.ok()) return DbError(db_, "record run");
  s.Bind(1, session).Bind(2, run);
  // A run still going has no message yet: it stays "running" until its end says why.
  s.Bind(3, r.message.empty() ? std::string("running") : std::string(StopKindName(r.stop)));
  s.Bind(4, r.message);
  s.Bind(5, Stored(r.steps)).Bind(6, Stored(r.tool_calls));
  s.Bind(7, Stored(r.input_tokens)).Bind(8, Stored(r.output_tokens));
  s.Bind(9, std::max(0.0, r.cost_usd)).Bind(10, Stored(r.fuel)).Bind(11, Stored(r.wall_us));
  s.Bind(12, UtcNowIso());
  if (s.Step() != SQLITE_DONE) return DbError(db_, "record run");
  if (sqlite3_changes(db_) != 1) {
    return MakeError(ErrorCode::kIo, "record run: no run " + std::to_string(run));
  }
  return OkStatus();
}

Result<RunSummary> SessionStore::Usage(const std::string& session) {
  // TOTAL sums as a real number, so counts near the largest value add up without SQLite's
  // integer overflow error; each sum is then cut to the largest count.
  Stmt s(db_,
         "SELECT TOTAL(steps), TOTAL(tool_calls), TOTAL(input_tokens), TOTAL(output_tokens), "
         "TOTAL(cost_usd), TOTAL(fuel), TOTAL(wall_us) FROM runs WHERE session_id = ?1");
  if (!s.ok()) return DbError(db_, "session usage");
  s.Bind(1, session);
  if (s.Step() != SQLITE_ROW) return DbError(db_, "session usage");
  auto count = [&](int c) -> uint64_t {
    double v = s.Real(c);
    if (!(v > 0)) return 0;
    if (v >= 18446744073709551615.0) return UINT64_MAX;
    return static_cast<uint64_t>(v);
  };
  RunSummary u;
  u.steps = count(0);
  u.tool_calls = count(1);
  u.input_tokens = count(2);
  u.output_tokens = count(3);
  u.cost_usd = std::max(0.0, s.Real(4));
  u.fuel = count(5);
  u.wall_us = count(6);
  return u;
}

Status SessionStore::AddTaint(const std::string& session, const TaintSource& t) {
  Stmt s(db_,
         "INSERT INTO taint SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6 "
         "FROM taint WHERE session_id = ?1");
  if (!s.ok()) return DbError(db_, "record untrusted input");
  s.Bind(1, session).Bind(2, t.kind).Bind(3, t.source).Bind(4, t.tool);
  s.Bind(5, Stored(t.step)).Bind(6, t.at);
  if (s.Step() != SQLITE_DONE) return DbError(db_, "record untrusted input");
  return OkStatus();
}

Result<std::vector<TaintSource>> SessionStore::Taint(const std::string& session) {
  Stmt s(db_, "SELECT kind, source, tool, step, at FROM taint WHERE session_id = ?1 ORDER BY seq");
  if (!s.ok()) return DbError(db_, "load untrusted input");
  s.Bind(1, session);
  std::vector<TaintSource> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    TaintSource t;
    bool whole = s.IsText(0) && s.IsText(1) && s.IsText(2) && s.IsInt(3) && s.IsText(4);
    t.kind = s.Text(0);
    t.source = s.Text(1);
    t.tool = s.Text(2);
    t.step = static_cast<uint64_t>(std::max<int64_t>(0, s.Int(3)));
    t.at = s.Text(4);
    if (!whole || t.source.empty()) {
      t.kind = "damaged";
      t.source = "untrusted content (its record in the session store is damaged)";
    }
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "load untrusted input");
  return out;
}

Result<std::vector<SessionInfo>> SessionStore::List() {
  Stmt s(db_,
         "SELECT id, created_at, updated_at, workspace, provider, model, title, "
         "(SELECT COUNT(*) FROM messages m WHERE m.session_id = sessions.id) "
         "FROM sessions ORDER BY updated_at DESC, id");
  if (!s.ok()) return DbError(db_, "list sessions");
  std::vector<SessionInfo> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6),
                   static_cast<uint64_t>(s.Int(7))});
  }
  if (rc != SQLITE_DONE) return DbError(db_, "list sessions");
  return out;
}

Result<SessionInfo> SessionStore::Info(const std::string& id) {
  auto all = List();
  if (!all) return all.error();
  for (const SessionInfo& i : *all) {
    if (i.id == id) return i;
  }
  return MakeError(ErrorCode::kInvalidArgument, "no session \"" + id.substr(0, 64) + "\"");
}

Status SessionStore::Delete(const std::string& id) {
  if (auto info = Info(id); !info) return info.error();
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return DbError(db_, "delete session");
  }
  // Every table keyed by session_id first (foreign keys), then the session's own row.
  std::vector<std::string> tables;
  {
    Stmt t(db_,
           "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
           "WHERE m.type = 'table' AND c.name = 'session_id'");
    int rc = SQLITE_ERROR;
    while (t.ok() && (rc = t.Step()) == SQLITE_ROW) tables.push_back(t.Text(0));
    if (!t.ok() || rc != SQLITE_DONE) {
      Error e = DbError(db_, "delete session");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
  }
  bool ok = true;
  for (const std::string& table : tables) {
    std::string quoted = "\"";
    for (char c : table) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    quoted += "\"";
    Stmt d(db_, ("DELETE FROM " + quoted + " WHERE session_id = ?1").c_str());
    ok = d.ok() && d.Bind(1, id).Step() == SQLITE_DONE;
    if (!ok) break;
  }
  if (ok) {
    Stmt d(db_, "DELETE FROM sessions WHERE id = ?1");
    ok = d.ok() && d.Bind(1, id).Step() == SQLITE_DONE;
  }
  if (!ok) {
    Error e = DbError(db_, "delete session");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return DbError(db_, "delete session");
  }
  return OkStatus();
}

bool SessionStore::IsSessionId(std::string_view id) {
  return id.size() == 12 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<std::vector<Message>> SessionStore::Load(const std::string& id) {
  if (auto info = Info(id); !info) return info.error();
  Stmt s(db_,
         "SELECT role, content, tool_calls, tool_call_id, tool_name, seq FROM messages "
         "WHERE session_id = ? ORDER BY seq");
  if (!s.ok()) return DbError(db_, "load session");
  s.Bind(1, id);
  std::vector<Message> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    // A row that is not as Append writes it (the file was damaged or edited) is refused,
    // named by its place in the session.
    auto damaged = [&](const std::string& why) {
      return MakeError(ErrorCode::kInvalidArgument, "session " + id + ", message " +
                                                        std::to_string(s.Int(5)) + ": " + why +
                                                        " (the session store is damaged)");
    };
    static constexpr const char* kColumns[] = {"role", "content", "tool_calls", "tool_call_id",
                                               "tool_name"};
    for (int c = 0; c < 5; ++c) {
      if (!s.IsText(c)) return damaged(std::string(kColumns[c]) + " is not text");
    }
    Message m;
    std::optional<Message::Role> role = RoleOf(s.Text(0));
    if (!role) {
      return damaged("role \"" + s.Text(0).substr(0, 64) +
                     "\" is not system, user, assistant or tool");
    }
    m.role = *role;
    m.content = s.Text(1);
    auto calls = ParseCalls(s.Text(2));
    if (!calls) return damaged(calls.error().message);
    m.tool_calls = std::move(*calls);
    m.tool_call_id = s.Text(3);
    m.tool_name = s.Text(4);
    out.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "load session");
  // Repair: every tool call of an assistant turn needs a result before the next turn.
  std::vector<Message> fixed;
  for (size_t i = 0; i < out.size(); ++i) {
    fixed.push_back(out[i]);
    if (out[i].role != Message::Role::kAssistant || out[i].tool_calls.empty()) continue;
    std::set<std::string> answered;
    size_t j = i + 1;
    for (; j < out.size() && out[j].role == Message::Role::kTool; ++j)
      answered.insert(out[j].tool_call_id);
    for (size_t k = i + 1; k < j; ++k) fixed.push_back(out[k]);
    for (const ToolCall& c : out[i].tool_calls) {
      if (answered.count(c.id) != 0) continue;
      Message m;
      m.role = Message::Role::kTool;
      m.tool_call_id = c.id;
      m.tool_name = c.name;
      m.content =
          DumpJson(json({{"ok", false},
                         {"error",
                          {{"code", "interrupted"},
                           {"message", "the run was interrupted before this call finished"}}}}));
      fixed.push_back(std::move(m));
    }
    i = j - 1;
  }
  return fixed;
}

}  // namespace moat::agent
