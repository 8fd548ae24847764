// gonet: the launcher. `gonet run` starts a program with libgonet.so preloaded; `gonet stats`
// and `gonet dump` read a running program's counters and its blocked threads; `gonet check`
// says whether and how a program can run under gonet before anyone tries.
//
// Each subcommand parses its own options (cxxopts); this file only dispatches and holds the
// top-level help, which is the CLI's reference text.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "preload/cli_check.h"
#include "preload/cli_dump.h"
#include "preload/cli_run.h"
#include "preload/cli_stats.h"

#ifndef GONET_VERSION
#define GONET_VERSION "unknown"
#endif

namespace {

const char kUsage[] =
    R"(gonet: Go's network poller for unmodified blocking-socket programs

usage:
  gonet run [OPTIONS] [--] PROGRAM [ARGS...]   run PROGRAM with libgonet.so preloaded
  gonet stats [PID] [--json] [--watch 1s]     a running program's gonet counters (no PID:
                                               list your programs under gonet)
  gonet dump PID                               its blocked threads: fd, op, peer, how long,
                                               and a backtrace of where each one blocked
  gonet check [--json] PROGRAM [ARGS...]       can PROGRAM run under gonet, in which mode,
                                               with which caveats (nothing is started)
  gonet help [COMMAND]                         this text, or a command's help (its --help)
  gonet --version

run options (details: gonet run --help):
  --mode threads|fibers|passthrough   how blocked calls wait (default threads)
  --read-timeout D  --write-timeout D  --connect-timeout D
                                      deadlines the program never set (D: 500ms, 30s, 2m)
  --stats                             counters summary on stderr at exit
  --fault SPEC  --fault-seed N        socket fault injection (repeatable --fault)
  --workers N                         worker threads for --mode fibers
  --lib PATH                          libgonet.so to use

examples:
  gonet run -- ./daemon                                  threads mode, no policy
  gonet run --mode fibers --stats -- ./daemon -p 8080    10k connections on a few threads
  gonet run --read-timeout 30s -- ./daemon               slowloris protection
  gonet run --fault 'connect:ECONNREFUSED:p=0.1' -- ./client
  gonet run --fault 'accept:EMFILE:n=2' --fault 'write:delay=50ms:port=6379' -- ./app
  gonet stats 4242
  gonet dump 4242
  gonet check /usr/sbin/privoxy

gonet refuses static, setuid/setgid and file-capability programs (LD_PRELOAD cannot reach
them) and exits 2 on any bad option before the program starts.
)";

struct Command {
  const char* name;
  int (*run)(int argc, char** argv);  // takes the arguments after the name
};
constexpr Command kCommands[] = {
    {"run", gonet::cli::RunCommand},
    {"stats", gonet::cli::StatsCommand},
    {"dump", gonet::cli::DumpCommand},
    {"check", gonet::cli::CheckCommand},
};

const Command* FindCommand(std::string_view name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fputs(kUsage, stderr);
    return 2;
  }
  std::string_view command = argv[1];
  if (const Command* c = FindCommand(command)) return c->run(argc - 2, argv + 2);
  if (command == "--version" || command == "-V" || command == "version") {
    printf("gonet %s\n", GONET_VERSION);
    return 0;
  }
  if (command == "--help" || command == "-h" || command == "help") {
    // `gonet help CMD` is `gonet CMD --help`, so each command's help has one source: its own.
    if (const Command* c = argc >= 3 ? FindCommand(argv[2]) : nullptr) {
      char help[] = "--help";
      char* help_argv[] = {help, nullptr};
      return c->run(1, help_argv);
    }
    fputs(kUsage, stdout);
    return 0;
  }
  fprintf(stderr,
          "gonet: unknown command \"%s\" (commands: run, stats, dump, check; see gonet --help)\n",
          argv[1]);
  return 2;
}
