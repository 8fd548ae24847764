// What a fiber keeps of a thread's per-thread kernel state (fibers mode, fiber_scheduler.h).
//
// A fiber is the program's thread, but the kernel only knows the worker OS thread under it, which
// runs other fibers too. The per-thread attributes that the program sets and reads back through a
// pthread_t are therefore kept here, one set per fiber, and answered for the fiber:
//   - its alternate signal stack (sigaltstack): installed on whichever machine runs the fiber, at
//     the switch, only when it differs from what that machine has (one compare per switch). A
//     fiber with none gets the machine's own stack, which gonet's stack-overflow report needs.
//   - scheduling policy and parameters (pthread_{get,set}schedparam, pthread_setschedprio): a
//     fiber attribute. Applying them to the worker would change every fiber on it, and gonet does
//     not schedule by priority; the values are validated as the kernel would.
//   - name (pthread_{get,set}name_np): the kernel's comm belongs to the worker; a new fiber starts
//     with its creator's name, as a new thread inherits its creator's comm.
//   - CPU affinity (pthread_{get,set}affinity_np): a fiber attribute (the worker runs others); a
//     fiber that never set one reports the mask of the thread that asks, which is the mask the
//     workers inherited from the program.
// Thread rule: a fiber's state is written by pthread calls on it from any thread, like the kernel
// state it replaces; each field's writer and readers are the program's own (its races are its own).
#pragma once

#include <sched.h>
#include <signal.h>

#include <cstddef>

namespace gonet::core {

struct FiberThreadState {
  // sigaltstack. alt_sp == nullptr: none (SS_DISABLE).
  void* alt_sp = nullptr;
  size_t alt_size = 0;
  int alt_flags = 0;  // SS_AUTODISARM as given
  // Scheduling (pthread_setschedparam).
  int policy = SCHED_OTHER;
  int priority = 0;
  // Name (pthread_setname_np), NUL-terminated; TASK_COMM_LEN is 16.
  char name[16] = {};
  // Affinity (pthread_setaffinity_np); affinity_bytes == 0: never set.
  size_t affinity_bytes = 0;
  cpu_set_t affinity;
  // The value of each pending pthread_sigqueue signal (fibers/fiber_signals.h).
  sigval sig_value[64] = {};
  // The kernel's siginfo of the process-directed signal a SignalWait's watch took for the fiber
  // (fibers/fiber_signals.h; FiberTask::sig_watch_taken_ names the signal).
  siginfo_t watch_info{};

  // What a fiber whose creator left nothing to inherit has: the process's default.
  void InitDefault();
};

// A new fiber's state (pthread_create(3)): its creator's policy, priority, name and affinity, no
// alternate stack. creator: the creating fiber's state, or nullptr (none, or an OS thread). Returns
// a new state, or nullptr when the default (InitDefault) is what it inherits, so most fibers never
// allocate one.
FiberThreadState* InheritThreadState(const FiberThreadState* creator, bool creator_is_fiber);

// The calling OS thread changed its own name or scheduling: InheritThreadState reads them again.
void ForgetOsThreadState();

// The machine's own alternate stack (WorkerMain), what a fiber with none runs with.
void NoteMachineAltStack(void* sp, size_t size);
// Installs the fiber's alternate stack on this machine if it is not there yet (FiberWorker::Run,
// before the switch into the fiber). s: the fiber's state, or nullptr (none: the machine's).
void SwitchAltStack(const FiberThreadState* s);
// sigaltstack(2) in a fiber.
int FiberSigaltstack(FiberThreadState& s, const stack_t* ss, stack_t* old);
// Where a handler with SA_ONSTACK that gonet runs for the fiber starts, as the kernel decides for a
// thread: the top of the fiber's alternate stack, or nullptr when it has none or already runs on
// it (a nested handler stays where it is). s: the fiber's state, or nullptr (none).
void* AltStackTopForHandler(const FiberThreadState* s);

// pthread calls answered for a fiber (shim/threads.cc). Return 0 or an errno value.
int FiberGetSchedParam(const FiberThreadState* s, int* policy, sched_param* param);
int FiberSetSchedParam(FiberThreadState& s, int policy, const sched_param* param);
int FiberSetSchedPrio(FiberThreadState& s, int prio);
int FiberGetName(const FiberThreadState* s, char* buf, size_t len);
int FiberSetName(FiberThreadState& s, const char* name);
int FiberGetAffinity(const FiberThreadState* s, size_t bytes, cpu_set_t* set);
int FiberSetAffinity(FiberThreadState& s, size_t bytes, const cpu_set_t* set);

}  // namespace gonet::core
