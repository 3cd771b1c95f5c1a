#include "interaction/cli.h"

int main(int argc, char** argv) { return moat::CliMain(argc, argv); }
