// What reads checkpoints (checkpoints.h): the diff of what a session's tool calls changed,
// the undo that puts it back, and the pruning of old checkpoint folders.
//
// Diff: per kept path, the state before the calls (the pre-image of the first call in the
// range that kept it) against the state after (the pre-image kept by the next call after
// the range, else the path as it is now on disk, marked "changed since" when that differs
// from the state the last call left it in). Calls already undone are left out.
//
// Undo: the calls from a step on that are not undone yet, put back as one change. Each
// kept path gets the pre-image of the earliest such call that kept it. Nothing is touched
// when a path was changed outside moat since the last call that kept it (a conflict), or
// when a call in the range could not keep everything it changed (not undoable), unless
// forced. Every path operation goes through the mount root's fd with openat2
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so a symlink a tool
// planted (in place of a parent folder, or of the file itself) is never followed: such a
// path is a conflict. Files are restored whole: each written to a temp file beside its
// path (a reflink of the kept bytes where the filesystem can, else a copy), all made
// durable by one syncfs per filesystem, then each renamed over its path. Folders are
// removed deepest first and made shallowest first. Each call undone gets an "undone"
// journal line, so a second undo finds nothing left to do. A journal or checkpoint folder
// another user could write is not obeyed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "orchestration/undo/checkpoints.h"

namespace moat::undo {

// Text files larger than this are summarised in a diff, not shown line by line.
inline constexpr uint64_t kMaxDiffTextBytes = 4u << 20;

struct DiffOptions {
  uint64_t step = 0;      // only the calls of this step; 0: every call
  std::string workspace;  // paths inside it are shown relative to it ("" = all absolute)
  // Roots whose paths may be read and shown (as UndoOptions::roots); others are named in
  // the notes only. Empty: any.
  std::vector<std::string> roots;
};

struct DiffEntry {
  std::string root, path;  // as the journal names it
  std::string shown;       // relative to the workspace when inside it, else absolute
  PathState before, after;
  bool after_is_disk = false;  // `after` is the path as it is now (no later call kept it)
  bool changed_since = false;  // ... and it differs from what the last call left
  bool binary = false;         // either side is a file that does not look like text
  bool unreadable = false;     // `after` could not be read (a symlink in its way, say)
  std::string summary;         // one line: "created file a.txt (12 bytes)", "Binary file ..."
  std::string diff;            // the unified diff of two text files ("" when none applies)
};

struct DiffReport {
  std::vector<DiffEntry> entries;  // in the order the calls first changed them
  std::vector<uint64_t> calls;     // the calls in the range
  std::vector<std::string> notes;  // calls not undoable, killed mid-call, paths not kept
};

// The changes of the calls in `dir` (a session's checkpoint folder). Paths whose state
// before and after are the same are left out.
Result<DiffReport> Diff(const std::string& dir, const DiffOptions& options);
// The report as text: summaries and unified diffs. Raw: paths and contents come from a
// tool, so a terminal gets it only through base/terminal_text.h.
std::string DiffText(const DiffReport& report);
nlohmann::json DiffToJson(const DiffReport& report);

struct UndoOptions {
  uint64_t to_step = 0;   // undo the calls of this step and later; 0: all
  bool force = false;     // past conflicts and calls not undoable
  bool dry_run = false;   // report what would be done, change nothing
  std::string workspace;  // for shown paths, as in DiffOptions
  // The folders (real paths) an undo may change things in: the journal names the mount
  // roots, and a journal is a file in the workspace, which may have come from elsewhere (a
  // cloned repository). A change kept under any other root refuses the whole undo, even a
  // forced one. Empty: any root.
  std::vector<std::string> roots;
};

struct UndoReport {
  bool refused = false;  // conflicts or calls not undoable, and not forced: nothing changed
  bool dry_run = false;
  std::vector<uint64_t> calls;            // the calls undone (or that would be)
  std::vector<std::string> restored;      // shown paths put back to an earlier content or mode
  std::vector<std::string> created;       // absent now, put back
  std::vector<std::string> deleted;       // made by the calls, removed
  std::vector<std::string> conflicts;     // "PATH: why" (changed outside moat since)
  std::vector<std::string> not_undoable;  // "call N (TOOL): why"
  std::vector<std::string> notes;         // paths restored without a check, and why
  uint64_t files() const { return restored.size() + created.size() + deleted.size(); }
};

// Puts back what the calls of `dir` from options.to_step on changed (see above). An error
// for what stops it part way (a journal that does not parse, a root that is gone, an I/O
// failure: the message names the path); a refusal is a report with `refused` set.
Result<UndoReport> Undo(const std::string& dir, const UndoOptions& options);
nlohmann::json UndoToJson(const UndoReport& report);

// Removes the checkpoint folders under `state_dir`/checkpoints/ (state_dir must be a
// workspace's `.moat`, else kInvalidArgument) whose journal was last written more than
// `older_than_seconds` ago (a folder without a journal: the folder's own time). Symlinks and files
// there are left alone. Returns the names of the folders removed.
Result<std::vector<std::string>> Prune(const std::string& state_dir, uint64_t older_than_seconds);

// Removes one session's checkpoint folder; `dir` must be .../.moat/checkpoints/NAME. A
// folder that is not there is not an error.
Status DeleteCheckpoints(const std::string& dir);

}  // namespace moat::undo
