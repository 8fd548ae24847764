// `gonet stats PID` and `gonet dump PID`: look into a running gonet program.
#pragma once

namespace gonet::cli {

// Both take the arguments after the subcommand and return the exit status.
int StatsCommand(int argc, char** argv);
int DumpCommand(int argc, char** argv);

}  // namespace gonet::cli
