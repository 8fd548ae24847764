#include "preload/cli_inspect.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace gonet::cli {
namespace {

// ParsePid accepts a positive decimal process id.
bool ParsePid(std::string_view s, long* pid) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pid = v;
  return v > 0;
}

// Inspect validates `gonet NAME PID` and reports what it cannot do yet.
int Inspect(const char* name, const char* what, int argc, char** argv) {
  if (argc == 1 && (std::string_view(argv[0]) == "-h" || std::string_view(argv[0]) == "--help")) {
    printf("usage: gonet %s PID\n  %s\n", name, what);
    return 0;
  }
  long pid = 0;
  if (argc != 1 || !ParsePid(argv[0], &pid)) {
    fprintf(stderr, "gonet %s: usage: gonet %s PID\n", name, name);
    return 2;
  }
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
    fprintf(stderr, "gonet %s: no process %ld\n", name, pid);
    return 2;
  }
  // The runtime does not publish its shared-memory segment yet; say so rather than print
  // zeros that look like an idle program.
  fprintf(stderr, "gonet %s: not yet available: the runtime does not publish its %s yet\n", name,
          std::string_view(name) == "stats" ? "counters" : "parked-fiber table");
  return 2;
}

}  // namespace

int StatsCommand(int argc, char** argv) {
  return Inspect("stats", "print the gonet counters of a running program", argc, argv);
}

int DumpCommand(int argc, char** argv) {
  return Inspect("dump", "list the parked fibers of a running program: fd, op, since, backtrace",
                 argc, argv);
}

}  // namespace gonet::cli
