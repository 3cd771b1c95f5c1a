// What a terminal shows before a tool the policy marks "ask" may run. A model chooses the
// arguments, so the prompt must not let them hide anything: attributes are reset first,
// the hosts and secrets the tool may use are named, every argument gets its own line (the
// ones the tool's schema names first), what a tool acts on (paths, URLs, patterns: strings
// its schema bounds to 8,192 characters) is shown whole, anything longer is cut with the
// size of what is not shown, and all of it is escaped (base/terminal_text.h).
#pragma once

#include <string>

#include "orchestration/agent/agent.h"

namespace moat {

// Bytes of one argument's JSON shown when it is cut.
inline constexpr size_t kPromptCutBytes = 200;
// A string argument whose schema's maxLength is at most this is shown whole.
inline constexpr size_t kPromptWholeChars = 8192;
// What such a string can take once escaped (a control is 6 bytes as \u001b, plus quotes).
inline constexpr size_t kPromptWholeShownBytes = 6 * kPromptWholeChars + 2;
// Arguments the schema does not name shown at most (their count is always shown).
inline constexpr size_t kPromptMaxArguments = 32;

// The prompt, from ESC[0m to the "[n] no > " it ends with.
std::string ApprovalPrompt(const agent::ApprovalRequest& request);

}  // namespace moat
