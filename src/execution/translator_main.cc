// moat-translator: parses, checks, meters and translates one untrusted module in a
// process of its own (see TranslateWasmIsolated); with --supervise, runs one program of
// the compile step under its limits (see compile_step.h).
#include <cstring>

#include "execution/compile_step.h"
#include "execution/module_pipeline.h"

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--supervise") == 0) return moat::SupervisorMain(argc, argv);
  return moat::TranslatorMain();
}
