// `gonet stats PID` and `gonet dump PID`: look into a running gonet program.
#ifndef GONET_PRELOAD_CLI_INSPECT_H_
#define GONET_PRELOAD_CLI_INSPECT_H_

namespace gonet::cli {

// Both take the arguments after the subcommand and return the exit status.
int StatsCommand(int argc, char** argv);
int DumpCommand(int argc, char** argv);

}  // namespace gonet::cli

#endif  // GONET_PRELOAD_CLI_INSPECT_H_
