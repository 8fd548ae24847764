// Whether an OS thread is running (or runnable) or blocked in the kernel, for the sysmon's
// handoff (fiber_scheduler.h): a machine whose fiber is blocked in a call gonet cannot see is
// handed off after 20 ms, but one that is merely computing or was preempted by the kernel (a
// busy machine: it gets its CPU back by itself) only after 200 ms, because a handoff moves the
// worker's other fibers to another OS thread, and with them every address of their thread-local
// variables (fibers/fiber_tls.h), which is the one thing per-fiber TLS cannot carry along.
#pragma once

#include <sys/types.h>

namespace gonet::core {

// True if /proc says the thread is running or runnable ('R'); false if it sleeps, waits on a
// disk, or cannot be read. Raw system calls only (the sysmon calls it; no hook, no allocation).
bool ThreadRunnable(pid_t tid);

}  // namespace gonet::core
