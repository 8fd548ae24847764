// gonet's own OS threads (fiber workers and machines, the sysmon, offload helpers) must be real
// threads made by libc's pthread_create, never by the interposed one, which in fibers mode would
// make them fibers. core/ cannot name shim/real.h (it sits above core), so the shim registers
// libc's function here at load (preload/entry.cc), before Init. Without a registration (core's
// unit tests, where no hook exists) the plain pthread_create is libc's own.
#pragma once

#include <pthread.h>

namespace gonet::core {

using ThreadCreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

// Called once by the library's constructor, before any gonet thread can start.
void SetOsThreadCreate(ThreadCreateFn create);

// libc's pthread_create: a real OS thread whatever the mode.
int CreateOsThread(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg);

// gonet's own threads say so at their start (workers, the sysmon, offload helpers), so that a
// signal handler can tell them from the program's OS threads (fibers/signal_route.h: the kernel
// may pick a gonet thread for a process-directed signal; the program's thread it stands for is
// a fiber). Async-signal-safe: one initial-exec TLS word.
void MarkGonetThread();
bool IsGonetThread();

}  // namespace gonet::core
