// The seam through which the WASI layer reports, before it changes a path, that the path is
// about to change, so that a caller can keep what was there (checkpoints, undo). The
// execution tier only calls it; what is kept and where is the caller's business
// (orchestration/undo/checkpoints.h).
#pragma once

#include <string>
#include <string_view>

namespace moat {

class PreImageSink {
 public:
  virtual ~PreImageSink() = default;
  // `name` in the directory open as `dir_fd` is about to be written, truncated, created,
  // removed, renamed or replaced. `root` is the real host path of the mount's folder and
  // `rel` the path from it ("a/b.txt"). With `tree`, `name` is a directory about to move:
  // everything beneath it changes path too. Called on the run's thread, before the change;
  // it never refuses the change (a path that cannot be kept marks the call not undoable).
  virtual void Before(const std::string& root, std::string_view rel, int dir_fd,
                      std::string_view name, bool tree) = 0;
  // A rename of `from_name` in `from_fd` (at `from_rel`) to `to_name` in `to_fd` (at
  // `to_rel`), in one mount, is about to happen: both names change, and when the source is
  // a directory, every path beneath it moves beneath the target.
  virtual void BeforeMove(const std::string& root, std::string_view from_rel, int from_fd,
                          std::string_view from_name, std::string_view to_rel, int to_fd,
                          std::string_view to_name) = 0;
};

}  // namespace moat
