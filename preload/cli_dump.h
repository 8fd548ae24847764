// `gonet dump PID`: every waiter of a running program under gonet, without stopping it.
#pragma once

namespace gonet::cli {

// Takes the arguments after the subcommand and returns the exit status.
int DumpCommand(int argc, char** argv);

}  // namespace gonet::cli
