// Sessions in SQLite (Debian's libsqlite3): each conversation's messages, tool calls and
// results, written one message per transaction as the agent makes them (WAL journal), so
// a kill -9 mid-run loses at most the step in flight and the database stays consistent.
// A session whose last assistant turn has tool calls without results (the run was
// killed) is repaired on load: each missing result becomes an `interrupted` error.
// Several processes may use one store at once: writes wait on SQLite's lock (5 s), and
// Open sets the database up under an flock on PATH.lock.
//
//   sessions(id, created_at, updated_at, workspace, provider, model, title)
//   messages(session_id, seq, role, content, tool_calls JSON, tool_call_id, tool_name,
//            created_at)            primary key (session_id, seq)
//   runs(session_id, seq, stop, message, steps, tool_calls, input_tokens, output_tokens,
//        cost_usd, fuel, wall_us, ended_at)
//   taint(session_id, seq, kind, source, tool, step, at)   untrusted input taken in
// A table added later is created by Open in a store made before it (CREATE TABLE IF NOT
// EXISTS): the sessions already there have no rows in it and go on as before.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "orchestration/agent/agent.h"
#include "orchestration/agent/provider.h"

struct sqlite3;

namespace moat::agent {

struct SessionInfo {
  std::string id;
  std::string created_at, updated_at;
  std::string workspace, provider, model, title;
  uint64_t messages = 0;
};

class SessionStore {
 public:
  static Result<std::unique_ptr<SessionStore>> Open(const std::string& path);
  ~SessionStore();

  // A new session; its id is 12 hex characters.
  Result<std::string> Create(const std::string& workspace, const std::string& provider,
                             const std::string& model, const std::string& title);
  Status Append(const std::string& session, const Message& m);
  Status RecordRun(const std::string& session, const RunSummary& s);
  // A run recorded as it goes: BeginRun adds its row (stop "running") and returns its
  // number; UpdateRun writes its use so far after every model call and at its end, so a
  // run killed part way keeps what it spent.
  Result<int64_t> BeginRun(const std::string& session);
  Status UpdateRun(const std::string& session, int64_t run, const RunSummary& s);
  // What the session's recorded runs used together (steps, calls, tokens, cost, fuel,
  // wall time; each sum stops at the largest count), so a resumed session goes on within
  // the same budgets.
  Result<RunSummary> Usage(const std::string& session);
  // Untrusted content the session took in (ToolGate::taint), kept so a resumed session
  // stays tainted. Taint returns them in order; a row not as AddTaint writes it still
  // counts (named as damaged), never dropped.
  Status AddTaint(const std::string& session, const TaintSource& s);
  Result<std::vector<TaintSource>> Taint(const std::string& session);
  Result<std::vector<SessionInfo>> List();
  Result<SessionInfo> Info(const std::string& id);
  // Removes a session and everything kept with it (messages, runs, and any other row of
  // it), in one transaction. kInvalidArgument for an unknown id.
  Status Delete(const std::string& id);
  // Whether `id` is spelled as Create makes ids (12 lowercase hex characters): what may name
  // a file or folder of the session.
  static bool IsSessionId(std::string_view id);
  // The messages in order, repaired as described above. kInvalidArgument for an unknown id,
  // and for a row not as Append writes it (a non-text column, an unknown role, tool calls
  // that are not an array of objects with string id, name and arguments), named by the
  // session and the message's number.
  Result<std::vector<Message>> Load(const std::string& id);

 private:
  explicit SessionStore(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// The role's name in the store and in exports.
std::string_view RoleName(Message::Role r);

}  // namespace moat::agent
