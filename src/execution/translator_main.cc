// moat-translator: parses, checks, meters and translates one untrusted module in a
// process of its own (see TranslateWasmIsolated).
#include "execution/module_pipeline.h"

int main() { return moat::TranslatorMain(); }
