#pragma once

namespace moat {

// The `moat` command line. Returns the process exit status.
int CliMain(int argc, char** argv);

}  // namespace moat
