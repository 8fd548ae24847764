// core/observe/: gonet dump's answering side (this file), backtraces, the crash report. May
// include: fd/, fibers/, threads/, poll/, stats/, base/ (core/README.md: Layers, LOCKING).
//
// `gonet dump PID`: every waiter of a running program (threads blocked in a socket call, threads
// parked on a pollDesc, parked fibers), what it waits on, for how long, and where, taken without
// stopping the program (Go's SIGQUIT goroutine dump, minus the exit).
//
// What the program keeps, so that there is something to dump:
//   - kernel-wait records (kernel_wait.h): threads mode's default wait, a thread inside the
//     blocking syscall itself. fd, op, since.
//   - wait notes (parker.h WaitNote) on every Parker: a thread parked on the netpoller path
//     (ThreadParker: GONET_THREADS_WAIT=netpoller, a deadline policy, fibers mode's OS threads)
//     or a parked fiber (FiberTask). fd and op, or a reason that is not a socket (mutex, cond,
//     rwlock, sem, sleep), and since.
//   - the parker table (DumpArea::parkers, in the shared segment): tid and futex address of each
//     ThreadParker, published by its thread before it first sleeps in a segment. It lets the
//     dumper tell, from /proc/PID/task/TID/syscall alone, a thread asleep on gonet's own futex
//     (safe to interrupt: the park loop restarts it) from one asleep in the program's own
//     futex (a sem_wait would return EINTR).
//   - DumpArea::answering: the process's SIGURG handler is gonet's, so a request is answered
//     and never reaches the program. Threads mode's kernel wait installs the handler at start
//     (ShmHeader kShmFlagKernelWait); the other modes install it, with SA_RESTART, when the first
//     ThreadParker sleeps (threads/sigurg.h EnsureDumpHandler).
//
// The protocol, over the live-stats segment (stats_shm.h):
//   1. The dumper (another process, same user or root) takes an exclusive flock on the segment
//      (one dump at a time), picks the next request number, resets the slot counter, and stores
//      the number in DumpArea::seq.
//   2. Round one: it asks one thread, with SIGURG sent by rt_tgsigqueueinfo, si_code SI_QUEUE and
//      a value carrying kDumpSignalMagic and the request number. The thread must be safe to
//      interrupt and must not be a fiber worker: one asleep on its published parker futex, else
//      (kernel wait) one blocked in a receive or accept, else the published answerer (fibers
//      mode's sysmon, DumpArea::answerer_tid), so that a fibers-mode process answers whatever its
//      own threads are doing.
//   3. That thread's handler (threads/sigurg.cc WakeHandler -> AnswerDumpRequest) wins the CAS on
//      waits_seq and copies every kernel-wait record and every noted ThreadParker into
//      DumpArea::waits; in fibers mode it then walks the suspended fibers
//      (FiberScheduler::ForEachSuspendedTask pins each while it is read), notes each in waits,
//      and for the first kDumpFiberSlots of them claims a slot with its fd, addresses and a
//      backtrace unwound from the fiber's saved context (backtrace.h FiberBacktrace); the other
//      slots stay for the threads of round two. Stores waits_done last (release). Waiters beyond
//      kDumpWaits are only counted (waits_more: the dump's "and N more" line); fibers beyond
//      kDumpFiberSlots are listed without a backtrace. If no thread is safe to ask, nothing is
//      signalled and the dump lists only what /proc shows (threads blocked in socket syscalls).
//   4. Round two: for each thread in waits that is safe to interrupt (re-checked in /proc right
//      before: a receive or accept without SO_RCVTIMEO in the kernel wait; asleep on its own
//      parker futex), the dumper sends the same request. Its handler claims a slot and writes its
//      tid, fd, op, since, peer and local address (getpeername/getsockname, plain syscalls) and
//      its backtrace from the signal's ucontext, then stores the slot's seq last (release).
//   5. Invisible to the program: the handler marks the interruption as gonet's. Kernel wait:
//      t_woken, and DirectCall restarts the call. Parked thread: ThreadParker's dump flag, set
//      only when the futex wait is about to return EINTR (the ucontext says so), and the park
//      loop sleeps again (a timed park's EINTR never becomes the program's).
//   6. The dumper waits, bounded, for the slots of its request, then prints every waiter. Symbol
//      names come from the target (libunwind's unw_get_proc_name reads the mapped ELF's symbol
//      tables, .symtab included, and is documented as safe in a signal handler for local
//      unwinding); the module of each pc comes from /proc/PID/maps.
//
// Why some kernel-wait threads are not interrupted: an interrupted blocking send that already
// copied some bytes returns that partial count instead of EINTR, and an interrupted connect cannot
// be restarted (the second connect says EALREADY); either would change what the program sees. A
// receive or accept on a socket with SO_RCVTIMEO is not signalled either: its restart would wait
// the whole timeout again. They are listed from their records, without a backtrace. A recv with
// MSG_WAITALL that already holds some bytes also returns them early: a documented limit (the
// kernel allows a signal to do that natively). Threads parked on the netpoller path have no such
// limits: the interrupted syscall is gonet's futex wait, which the park loop simply resumes.
//
// Cost when nobody dumps: kernel wait, none (KernelWait already writes fd/op/since). Netpoller
// path and fibers: the wait note, three relaxed stores and one coarse vDSO clock read per blocked
// call or fiber-mutex/sleep park (no fence, no syscall, no allocation; note + clear measured at
// 3 ns); one pointer compare before a ThreadParker's futex sleep. Backtraces, symbol lookups and
// getpeername happen only in a dump.
#pragma once

#include <signal.h>

#include "core/stats/dump_area.h"

namespace gonet::core {

struct KernelWaitRecord;
class ThreadParker;

// In the SIGURG handler, on the thread the request was sent to. rec: that thread's record when it
// is inside a DirectCall; parker: its ThreadParker when it has a wait noted; else nullptr.
// Async-signal-safe: atomics, plain syscalls and libunwind's local unwinding only.
void AnswerDumpRequest(const siginfo_t* si, void* ucontext, const KernelWaitRecord* rec,
                       const ThreadParker* parker);

// Publishes the calling gonet thread as the process's round-one answerer (fibers mode's sysmon:
// it sleeps in a tick or a futex wait that an interruption only shortens, and it is not a worker,
// so it may walk the fibers). Installs the handler. False if there is no segment or handler.
// runtime/ registers it as the sysmon's start hook (fiber_scheduler.h SetSysmonStartHook).
bool PublishDumpAnswerer();

}  // namespace gonet::core
