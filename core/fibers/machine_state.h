// Whether an OS thread is running (or runnable) or blocked in the kernel, and how much CPU it has
// used, for the sysmon's handoff (fiber_scheduler.h): a machine whose fiber is blocked in a call
// gonet cannot see is handed off after 20 ms, but one that is runnable only once its fiber has
// used 200 ms of CPU in that run (a computation, a spin on another fiber's flag). A handoff moves
// the worker's other fibers to another OS thread, and with them every address of their
// thread-local variables (fibers/fiber_tls.h), which is the one thing per-fiber TLS cannot carry
// along; so a machine that is runnable but not running (the kernel gave its CPU to others, on an
// overloaded host) is left alone: it gets its CPU back by itself, and counting wall time there
// moved fibers for nothing (regress.tls_session answered the wrong connection under load 30).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace gonet::core {

// True if /proc says the thread is running or runnable ('R'); false if it sleeps, waits on a
// disk, or cannot be read. Raw system calls only (the sysmon calls it; no hook, no allocation).
bool ThreadRunnable(pid_t tid);

// CPU time the thread has used (its CLOCK_THREAD_CPUTIME_ID, read from another thread of the
// process), or -1 if it cannot be read. A raw system call.
int64_t ThreadCpuNs(pid_t tid);

}  // namespace gonet::core
