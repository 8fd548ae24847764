// `gonet check`: whether and how a program can run under gonet, from its files alone.
#pragma once

namespace gonet::cli {

// CheckCommand takes the arguments after "check". Returns 0 (fine), 1 (runs, with caveats) or
// 2 (cannot run under gonet, or a usage error); core::Verdict's values.
int CheckCommand(int argc, char** argv);

}  // namespace gonet::cli
