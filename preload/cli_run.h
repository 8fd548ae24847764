// `gonet run`: validate the options, set GONET_* and LD_PRELOAD, exec the program.
#pragma once

namespace gonet::cli {

// RunCommand takes the arguments after "run". It returns only when it does not start the
// program: 2 for a usage error or a refused program, 126/127 when the program cannot be
// executed or found; otherwise the program replaces gonet (exec) and its exit status is the
// run's.
int RunCommand(int argc, char** argv);

}  // namespace gonet::cli
