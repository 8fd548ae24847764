// A fault inside gonet itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE, or abort) must say so: gonet
// runs inside other people's programs, and a crash that only shows the program's name would send
// its owner looking in the wrong place. At start-up gonet installs a handler for those signals
// where the program has none (SIG_DFL): it unwinds the faulting thread with libunwind and, if the
// innermost frame that is not libc's (abort, raise, the signal trampoline) lies in libgonet.so,
// writes "gonet: fatal <signal> inside gonet (a gonet bug)" and the backtrace to stderr. A gonet
// frame further out proves nothing: every fiber's stack has gonet's fiber entry at its base, and
// the program's calls go through gonet's hooks. A fault in the program's own code gets one line
// when it happened in a fiber (that it ran under gonet's fibers mode), and nothing otherwise.
// Either way it then lets the program die as it would have: the handler is installed with
// SA_RESETHAND, so the re-executed fault (or abort's second raise) takes the default action, core
// dump included. A handler the program installs later replaces gonet's, so the program's own
// handlers keep working; fibers mode chains its stack-overflow report to it.
#pragma once

namespace gonet::core {

void InstallCrashReporter();

}  // namespace gonet::core
