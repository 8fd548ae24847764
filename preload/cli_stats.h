// `gonet stats [PID]`: the counters of a running program under gonet, or the list of them.
#pragma once

namespace gonet::cli {

// Takes the arguments after the subcommand and returns the exit status.
int StatsCommand(int argc, char** argv);

}  // namespace gonet::cli
