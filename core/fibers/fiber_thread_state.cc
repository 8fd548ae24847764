#include "core/fibers/fiber_thread_state.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include "core/base/sys.h"

namespace gonet::core {
namespace {

// What this machine has installed: nullptr is its own stack (NoteMachineAltStack), else a fiber's.
__thread void* t_alt_installed __attribute__((tls_model("initial-exec"))) = nullptr;
__thread void* t_machine_alt_sp __attribute__((tls_model("initial-exec"))) = nullptr;
__thread size_t t_machine_alt_size __attribute__((tls_model("initial-exec"))) = 0;

// The creating OS thread's own state, as InheritFrom last read it.
__thread bool t_os_known __attribute__((tls_model("initial-exec"))) = false;
__thread int t_os_policy __attribute__((tls_model("initial-exec"))) = SCHED_OTHER;
__thread int t_os_priority __attribute__((tls_model("initial-exec"))) = 0;
__thread char t_os_name[16] __attribute__((tls_model("initial-exec")));

bool OnStack(const void* sp, size_t size) {
  char here;
  auto p = reinterpret_cast<uintptr_t>(&here);
  auto lo = reinterpret_cast<uintptr_t>(sp);
  return sp != nullptr && p >= lo && p < lo + size;
}

bool ValidPolicy(int policy) {
  switch (policy) {
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE:
    case SCHED_FIFO:
    case SCHED_RR:
      return true;
    default:
      return false;
  }
}

// The kernel's checks for sched_setattr on a thread of this process: the priority range of the
// policy, and for a real-time one the right to use it (CAP_SYS_NICE, approximated by root, or
// RLIMIT_RTPRIO).
int CheckSched(int policy, int priority) {
  if (!ValidPolicy(policy)) return EINVAL;
  if (priority < sched_get_priority_min(policy) || priority > sched_get_priority_max(policy)) {
    return EINVAL;
  }
  if (policy == SCHED_FIFO || policy == SCHED_RR) {
    rlimit rl{};
    if (geteuid() != 0 &&
        (getrlimit(RLIMIT_RTPRIO, &rl) != 0 || static_cast<rlim_t>(priority) > rl.rlim_cur)) {
      return EPERM;
    }
  }
  return 0;
}

// The process's default: the name and scheduling of the first OS thread that made a fiber (the
// program's main thread, usually). Written once.
std::atomic<int> g_default_state{0};  // 0 unset, 1 writing, 2 set
FiberThreadState g_default;

void ReadOsThreadState() {
  if (t_os_known) return;
  sched_param p{};
  int pol = sched_getscheduler(0);
  t_os_policy = pol >= 0 ? pol & ~SCHED_RESET_ON_FORK : SCHED_OTHER;
  t_os_priority = sched_getparam(0, &p) == 0 ? p.sched_priority : 0;
  memset(t_os_name, 0, sizeof t_os_name);
  sys::Call(SYS_prctl, PR_GET_NAME, t_os_name, 0, 0, 0);
  t_os_known = true;
}

}  // namespace

void FiberThreadState::InitDefault() {
  if (g_default_state.load(std::memory_order_acquire) == 2) {
    *this = g_default;
    return;
  }
  policy = SCHED_OTHER;
  priority = 0;
  memset(name, 0, sizeof name);
}

FiberThreadState* InheritThreadState(const FiberThreadState* creator, bool creator_is_fiber) {
  if (creator_is_fiber) {
    if (creator == nullptr) return nullptr;  // the default too
    auto* s = new (std::nothrow) FiberThreadState(*creator);
    if (s == nullptr) return nullptr;
    s->alt_sp = nullptr;
    s->alt_size = 0;
    s->alt_flags = 0;
    return s;
  }
  // An OS thread creates it: that thread's own kernel state, read once per thread (a thread that
  // accepts and spawns per connection must not pay three syscalls per pthread_create) and again
  // after it changed it through gonet (ForgetOsThreadState).
  ReadOsThreadState();
  int expect = 0;
  if (g_default_state.compare_exchange_strong(expect, 1, std::memory_order_acq_rel)) {
    g_default.policy = t_os_policy;
    g_default.priority = t_os_priority;
    memcpy(g_default.name, t_os_name, sizeof g_default.name);
    g_default_state.store(2, std::memory_order_release);
  }
  if (g_default_state.load(std::memory_order_acquire) == 2 && g_default.policy == t_os_policy &&
      g_default.priority == t_os_priority &&
      memcmp(g_default.name, t_os_name, sizeof g_default.name) == 0) {
    return nullptr;
  }
  auto* s = new (std::nothrow) FiberThreadState;
  if (s == nullptr) return nullptr;
  s->policy = t_os_policy;
  s->priority = t_os_priority;
  memcpy(s->name, t_os_name, sizeof s->name);
  return s;
}

void ForgetOsThreadState() { t_os_known = false; }

void NoteMachineAltStack(void* sp, size_t size) {
  t_machine_alt_sp = sp;
  t_machine_alt_size = size;
  t_alt_installed = nullptr;
}

void SwitchAltStack(const FiberThreadState* s) {
  void* want = s != nullptr ? s->alt_sp : nullptr;
  if (__builtin_expect(want == t_alt_installed, 1)) return;
  stack_t ss{};
  if (want != nullptr) {
    ss.ss_sp = s->alt_sp;
    ss.ss_size = s->alt_size;
    ss.ss_flags = s->alt_flags;
  } else if (t_machine_alt_sp != nullptr) {
    ss.ss_sp = t_machine_alt_sp;
    ss.ss_size = t_machine_alt_size;
  } else {
    ss.ss_flags = SS_DISABLE;
  }
  // On the machine's scheduler stack, never on an alternate one: the kernel accepts it.
  if (sys::Call(SYS_sigaltstack, &ss, nullptr) == 0) t_alt_installed = want;
}

void* AltStackTopForHandler(const FiberThreadState* s) {
  if (s == nullptr || s->alt_sp == nullptr || OnStack(s->alt_sp, s->alt_size)) return nullptr;
  return static_cast<char*>(s->alt_sp) + s->alt_size;
}

int FiberSigaltstack(FiberThreadState& s, const stack_t* ss, stack_t* old) {
  stack_t was{};
  if (s.alt_sp != nullptr) {
    was.ss_sp = s.alt_sp;
    was.ss_size = s.alt_size;
    was.ss_flags = s.alt_flags | (OnStack(s.alt_sp, s.alt_size) ? SS_ONSTACK : 0);
  } else {
    was.ss_flags = SS_DISABLE;
  }
  if (ss != nullptr) {
    if (was.ss_flags & SS_ONSTACK) {
      errno = EPERM;
      return -1;
    }
    // The kernel validates (flags, MINSIGSTKSZ) and installs it on this machine, which runs the
    // fiber now; SwitchAltStack moves it along.
    long r = sys::Call(SYS_sigaltstack, ss, nullptr);
    if (r != 0) {
      errno = static_cast<int>(-r);
      return -1;
    }
    if (ss->ss_flags & SS_DISABLE) {
      s.alt_sp = nullptr;
      s.alt_size = 0;
      s.alt_flags = 0;
      SwitchAltStack(&s);  // back to the machine's own
    } else {
      s.alt_sp = ss->ss_sp;
      s.alt_size = ss->ss_size;
      s.alt_flags = ss->ss_flags & ~SS_ONSTACK;
      t_alt_installed = s.alt_sp;
    }
  }
  if (old != nullptr) *old = was;
  return 0;
}

int FiberGetSchedParam(const FiberThreadState* s, int* policy, sched_param* param) {
  FiberThreadState def;
  if (s == nullptr) def.InitDefault();
  *policy = s != nullptr ? s->policy : def.policy;
  param->sched_priority = s != nullptr ? s->priority : def.priority;
  return 0;
}

int FiberSetSchedParam(FiberThreadState& s, int policy, const sched_param* param) {
  int base = policy & ~SCHED_RESET_ON_FORK;
  if (int e = CheckSched(base, param->sched_priority); e != 0) return e;
  s.policy = base;
  s.priority = param->sched_priority;
  return 0;
}

int FiberSetSchedPrio(FiberThreadState& s, int prio) {
  if (int e = CheckSched(s.policy, prio); e != 0) return e;
  s.priority = prio;
  return 0;
}

int FiberGetName(const FiberThreadState* s, char* buf, size_t len) {
  FiberThreadState def;
  if (s == nullptr) {
    def.InitDefault();
    s = &def;
  }
  size_t n = strnlen(s->name, sizeof s->name - 1);
  if (len < sizeof s->name) return ERANGE;  // glibc: a buffer shorter than TASK_COMM_LEN
  memcpy(buf, s->name, n);
  buf[n] = '\0';
  return 0;
}

int FiberSetName(FiberThreadState& s, const char* name) {
  size_t n = strlen(name);
  if (n >= sizeof s.name) return ERANGE;
  memset(s.name, 0, sizeof s.name);
  memcpy(s.name, name, n);
  return 0;
}

int FiberGetAffinity(const FiberThreadState* sp, size_t bytes, cpu_set_t* set) {
  if (sp == nullptr || sp->affinity_bytes == 0) {
    // Never set: what the thread asking has, which is what the program's threads inherit.
    long r = sys::Call(SYS_sched_getaffinity, 0, bytes, set);
    if (r < 0) return static_cast<int>(-r);
    // glibc clears the part of the caller's set beyond what the kernel wrote.
    if (static_cast<size_t>(r) < bytes) memset(reinterpret_cast<char*>(set) + r, 0, bytes - r);
    return 0;
  }
  const FiberThreadState& s = *sp;
  size_t n = bytes < s.affinity_bytes ? bytes : s.affinity_bytes;
  memcpy(set, &s.affinity, n);
  if (n < bytes) memset(reinterpret_cast<char*>(set) + n, 0, bytes - n);
  return 0;
}

int FiberSetAffinity(FiberThreadState& s, size_t bytes, const cpu_set_t* set) {
  // The kernel's check: at least one CPU of the set allowed for this process.
  cpu_set_t allowed;
  long r = sys::Call(SYS_sched_getaffinity, 0, sizeof allowed, &allowed);
  if (r < 0) return static_cast<int>(-r);
  size_t n = bytes < sizeof allowed ? bytes : sizeof allowed;
  bool any = false;
  for (size_t i = 0; i < n && !any; ++i) {
    any = (reinterpret_cast<const unsigned char*>(set)[i] &
           reinterpret_cast<const unsigned char*>(&allowed)[i]) != 0;
  }
  if (!any) return EINVAL;
  CPU_ZERO(&s.affinity);
  memcpy(&s.affinity, set, n);
  s.affinity_bytes = sizeof s.affinity;
  return 0;
}

}  // namespace gonet::core
