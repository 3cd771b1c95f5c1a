// Run reports: the ExecResult as one JSON object or one line of text.
#pragma once

#include <string>

#include "execution/exec.h"

namespace moat {

std::string ReportJson(const ExecResult& r);
std::string ReportText(const ExecResult& r);

}  // namespace moat
