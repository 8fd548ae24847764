// SIGURG belongs to gonet, in every mode that parks (threads and fibers): this file alone owns
// its handler. Three users share the one signal, told apart by si_code and si_value:
//   - threads mode's kernel wait (kernel_wait.h): a closer's tgkill (SI_TKILL from this process)
//     wakes a thread blocked in the kernel on the closed fd; the handler only marks the thread
//     woken, and the interrupted call returns EINTR to gonet, not to the program.
//   - a fiber's signal interrupting the call an offload helper makes for it (SetSigurgClaim);
//   - `gonet dump` (observe/dump.h): a request queued from another process (SI_QUEUE with
//     kDumpSignalMagic); the handler hands it to the dump answerer that runtime/ registered
//     (SetDumpAnswerer: observe/ sits above threads/, so it cannot be called by name here).
//   - anything else is the program's own SIGURG (out-of-band data, or its own use): it goes to
//     the program's handler, which lives in a virtual table that sigaction shows and changes
//     (VirtualSigaction), so the program never sees gonet's handler.
// Installed without SA_RESTART for the kernel wait (the blocked call must return EINTR), with it
// for the dump alone (a stray SIGURG then disturbs the program's own blocking calls as little as a
// handler can). Async-signal-safe throughout: atomics, TLS of the initial-exec model, syscalls.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

namespace gonet::core {

struct KernelWaitRecord;
class ThreadParker;

// The handler's dump request path (observe/dump.h AnswerDumpRequest), set by runtime/ at Init.
using DumpAnswerer = void (*)(const siginfo_t* si, void* ucontext, const KernelWaitRecord* rec,
                              const ThreadParker* parker);
void SetDumpAnswerer(DumpAnswerer answer);

// Another user of gonet's SIGURG inside the process (fibers mode's offload helpers, interrupted
// for a fiber's signal: fibers/syscall_offload.h), registered by runtime/. It returns true when
// the signal was its own (then nothing else happens).
using SigurgClaim = bool (*)(const siginfo_t* si, void* ucontext);
void SetSigurgClaim(SigurgClaim claim);

// gonet's own SIGURG to thread tid of this process, saying what it is for in its value (SI_QUEUE;
// magic in the high half, id in the low): how a fiber's signal interrupts an offload helper's
// call (fibers/syscall_offload.h) and how a running fiber is kicked (fibers/signal_kick.cc).
void SendGonetSigurg(int tid, uint64_t magic, uint32_t id);
// True if si is such a SIGURG with that magic; *id its id.
bool IsGonetSigurg(const siginfo_t* si, uint64_t magic, uint32_t* id);
// From a SIGURG handler whose interrupted context rests on a syscall instruction (the kernel
// rewound an interrupted call there to restart it after gonet's SA_RESTART handler, or the call
// was about to be made): resume after the instruction with -EINTR, as the kernel ends a call
// interrupted by a handler without SA_RESTART. x86_64; elsewhere nothing (the call restarts).
void EndRewoundSyscallWithEintr(void* ucontext);

// Threads mode's kernel wait: installs the handler without SA_RESTART (Init).
void InstallKernelWaitHandler();
// True once the handler is gonet's and it answers the kernel wait's wake-ups. Inline: every
// blocking socket call in threads mode asks.
namespace internal {
extern std::atomic<bool> g_sigurg_handler_installed;
}
inline bool KernelWaitHandlerInstalled() {
  return internal::g_sigurg_handler_installed.load(std::memory_order_relaxed);
}

// gonet dump in the modes without the kernel wait (netpoller path, fibers): installs the same
// handler with SA_RESTART. Returns true once gonet's handler is installed. A program that
// installs its own SIGURG handler at that very moment, from another thread, may lose it: a
// documented limit (Init installs it, so only a program racing its own start-up could).
bool EnsureDumpHandler();

// The pid the kernel wait's tgkill targets (refreshed in a fork child).
int SigurgPid();
void SigurgAfterForkChild();

// sigaction/signal for SIGURG: served from the virtual table once gonet owns the handler.
// Returns true if handled (then *result is sigaction's return value).
bool VirtualSigaction(int sig, const struct sigaction* act, struct sigaction* old, int* result);

}  // namespace gonet::core
