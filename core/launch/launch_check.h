// Launch checks: can libgonet.so be preloaded into this program at all?
//
// `gonet run` asks before it execs, because when LD_PRELOAD cannot take effect the loader
// says nothing and the program runs natively, which looks like gonet did nothing. Three cases:
//   - a static executable (no PT_INTERP program header, static-pie included) never runs the
//     dynamic loader, so nothing reads LD_PRELOAD;
//   - a setuid or setgid program, or one with file capabilities, runs in the loader's
//     secure-execution mode (AT_SECURE), which ignores LD_PRELOAD entries with a '/' in them;
//     gonet refuses them whoever runs them, so the answer does not depend on the caller's uid;
//   - an ELF program of another class or machine (a 32-bit program) cannot load a 64-bit .so.
// A script ("#!") is fine when its interpreter is: the interpreter is the process that loads
// libgonet.so. A file that is neither ELF nor "#!" is run by /bin/sh, as execvp does.
//
// The checks read files and allocate nothing; they are used by the launcher only.
#pragma once

#include <limits.h>

#include <string_view>

#include "core/base/parse_error.h"

namespace gonet::core {

// Exit codes of `gonet run` when it does not start the program, after the shell's convention.
inline constexpr int kExitRefused = 2;          // usage error, or the program cannot be preloaded
inline constexpr int kExitNotExecutable = 126;  // found, but exec would fail with EACCES
inline constexpr int kExitNotFound = 127;

struct ResolvedProgram {
  char path[PATH_MAX] = {};  // what to exec, when ok()
  int exit_code = 0;         // kExitNotFound or kExitNotExecutable when !ok()
  ParseError error;          // e.g. `"redis-srv": command not found in PATH`
  bool ok() const noexcept { return exit_code == 0; }
};

// ResolveProgram finds `name` as execvp would: as given when it contains a '/', else in each
// directory of `path_env` (an empty entry is the current directory; nullptr means glibc's
// default "/bin:/usr/bin"). Only regular files that the caller may execute are found.
ResolvedProgram ResolveProgram(std::string_view name, const char* path_env) noexcept;

// CheckPreloadable returns an error explaining why LD_PRELOAD would not take effect in `path`,
// or no error when it would.
ParseError CheckPreloadable(const char* path) noexcept;

}  // namespace gonet::core
