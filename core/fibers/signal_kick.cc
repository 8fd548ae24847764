// A signal for a fiber that is running: the kick (fibers/fiber_signals.h, Thread-directed
// signals).
//
// The kernel interrupts a thread that computes to run a handler; a fiber that computes never
// parks, so pthread_kill of it (or pthread_cancel with asynchronous cancellation) must interrupt
// the OS thread running it, as Go's runtime preempts a goroutine with a signal. The rule:
//
//   Kill/Cancel   mark the fiber (pending signal, or cancel request); if it is on a CPU, send
//                 gonet's SIGURG to the OS thread running it (on_cpu_ holds that thread's tid),
//                 with kKickMagic and the fiber's id in the value; and raise g_kick_wanted so the
//                 sysmon sends it again every tick while the fiber runs with the mark.
//   the handler   (OnKick, gonet's SIGURG claim) acts only at a safe point: this OS thread still
//                 runs that fiber (t_current), the interrupted code is the program's or libc's,
//                 not gonet's and not the context switch, and no gonet frame lies between it and
//                 the fiber's entry (RunStart), found by unwinding the interrupted stack. Then it
//                 runs the fiber's deliverable handlers (DeliverSignals), there, on the
//                 interrupted stack, as the kernel would; or it acts on an asynchronous
//                 cancellation: a forced unwind from the handler, through the signal frame, as
//                 glibc's SIGCANCEL handler does. Anywhere else it does nothing: the fiber is in
//                 gonet, which delivers at its next park, or the next kick finds a safe point.
//   the sysmon    while g_kick_wanted is up, each tick (10 ms) looks at every task on a CPU and
//                 kicks again those with a deliverable signal; none left: it lowers the flag. (A
//                 cancellation is kicked once: a fiber the kick finds in gonet acts on it at its
//                 next cancellation point.)
//
// A handler without SA_RESTART that interrupted a raw system call the fiber made (the
// interrupted context rests on the syscall instruction, where the kernel rewound it to restart
// after gonet's SA_RESTART handler) ends that call with EINTR, as the kernel would have.
// What a kick cannot do: reach code that runs without unwind information between the interrupted
// frame and the fiber's entry (the unwinder stops there: no safe point is proven), so such a
// fiber runs the handler at its next park, as before.
#include <link.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "core/base/sys.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/futex_call.h"
#include "core/fibers/worker.h"
#include "core/threads/sigurg.h"

namespace gonet::core {
namespace {

constexpr uint64_t kKickMagic = 0x676b6963;  // "gkic"

std::atomic<bool> g_kick_wanted{false};

// Executable ranges of gonet's own object and of the context switch's (set once, at start).
struct CodeRange {
  uintptr_t lo = 0, hi = 0;
  bool Has(uintptr_t pc) const { return pc >= lo && pc < hi; }
};
CodeRange g_gonet_code, g_switch_code;

struct RangeSearch {
  uintptr_t addr;
  CodeRange* out;
};

int FindRange(dl_phdr_info* info, size_t, void* p) {
  auto* s = static_cast<RangeSearch*>(p);
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    uintptr_t a = info->dlpi_addr + ph.p_vaddr, b = a + ph.p_memsz;
    if (a < lo) lo = a;
    if (b > hi) hi = b;
    if (s->addr >= a && s->addr < b) mine = true;
  }
  if (!mine) return 0;
  *s->out = CodeRange{lo, hi};
  return 1;
}

void NoteRange(const void* addr, CodeRange* out) {
  RangeSearch s{reinterpret_cast<uintptr_t>(addr), out};
  dl_iterate_phdr(FindRange, &s);
}

bool InGonet(uintptr_t pc) { return g_gonet_code.Has(pc) || g_switch_code.Has(pc); }

// The unwinder's walk from the handler up the interrupted stack (Safe, below).
struct Walk {
  uintptr_t interrupted;  // the interrupted pc: frames before it are the handler's own
  uintptr_t entry;        // FiberTask::RunStart
  bool seen = false;
  bool safe = false;
  bool caller_of_program_syscall = false;  // the next frame is gonet's syscall() hook
  int frames = 0;
};

_Unwind_Reason_Code Step(_Unwind_Context* ctx, void* p) {
  auto* w = static_cast<Walk*>(p);
  if (++w->frames > 512) return _URC_END_OF_STACK;
  int before = 0;
  uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);
  if (!w->seen) {
    if (ip != w->interrupted) return _URC_NO_REASON;  // the handler's own frames
    w->seen = true;
  }
  uintptr_t fn = _Unwind_GetRegionStart(ctx);
  if (fn == w->entry) {
    w->safe = true;
    return _URC_END_OF_STACK;
  }
  // The program's own system call, made for it by gonet's syscall() hook, which holds nothing.
  if (fn == reinterpret_cast<uintptr_t>(&ProgramSyscall)) {
    w->caller_of_program_syscall = true;
    return _URC_NO_REASON;
  }
  if (std::exchange(w->caller_of_program_syscall, false)) return _URC_NO_REASON;
  // A return address points after its call: the caller is the byte before it.
  if (InGonet(before != 0 ? ip : ip - 1)) return _URC_END_OF_STACK;
  return _URC_NO_REASON;
}

uintptr_t InterruptedPc(const void* uc) {
  const auto* u = static_cast<const ucontext_t*>(uc);
#if defined(__x86_64__)
  return static_cast<uintptr_t>(u->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<uintptr_t>(u->uc_mcontext.pc);
#else
  (void)u;
  return 0;
#endif
}

}  // namespace

// Not instrumented, as the syscall() hook that calls it: AddressSanitizer itself calls
// sigaltstack (and so this) while it unpoisons a stack it is leaving.
__attribute__((noinline, no_sanitize_address)) long ProgramSyscall(long nr, const long a[6]) {
#if defined(__x86_64__)
  return sys::Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
#else
  long r = ::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  return r == -1 ? -errno : r;
#endif
}

void FiberTask::NoteCodeRanges() {
  NoteRange(reinterpret_cast<const void*>(&FiberTask::NoteCodeRanges), &g_gonet_code);
  NoteRange(Fiber::SwitchCode(), &g_switch_code);
}

// On the fiber's own thread (OnKick): the mark is still there. Others (the sysmon) look only at
// the atomic signal words: a cancellation is kicked once, by Cancel.
bool FiberTask::KickWanted() const {
  return HasDeliverableSignal() || (cancel_async_ && CancelDue());
}

void FiberTask::KickIfRunning() {
  uint32_t tid = on_cpu_.load(std::memory_order_seq_cst);
  if (tid == 0 || this == FiberScheduler::Current()) return;
  g_kick_wanted.store(true, std::memory_order_release);
  SendGonetSigurg(static_cast<int>(tid), kKickMagic, id_);
}

void FiberTask::KickRunningTasks() {
  if (!g_kick_wanted.load(std::memory_order_acquire) || g_task_base == nullptr) return;
  g_kick_wanted.store(false, std::memory_order_relaxed);
  size_t n = g_task_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    FiberTask& t = g_task_base[i];
    uint32_t tid = t.on_cpu_.load(std::memory_order_acquire);
    if (tid == 0 || !t.alive_.load(std::memory_order_acquire) || !t.HasDeliverableSignal()) {
      continue;
    }
    g_kick_wanted.store(true, std::memory_order_relaxed);
    SendGonetSigurg(static_cast<int>(tid), kKickMagic, t.id_);
  }
}

bool FiberTask::IsKick(const siginfo_t* si) { return IsGonetSigurg(si, kKickMagic, nullptr); }

void FiberTask::OnKick(const siginfo_t* si, void* uc) {
  FiberTask* t = t_current;
  uint32_t id = 0;
  IsGonetSigurg(si, kKickMagic, &id);
  if (t == nullptr || t->id_ != id || uc == nullptr || !t->KickWanted()) return;
  uintptr_t pc = InterruptedPc(uc);
  // In the context switch the stack is not one the unwinder can walk; anywhere else in gonet, the
  // walk finds gonet's frame. Either way it delivers at its next park, or the next kick.
  if (pc == 0 || g_switch_code.Has(pc)) return;
  Walk walk{pc, reinterpret_cast<uintptr_t>(&FiberTask::RunStart)};
  _Unwind_Backtrace(Step, &walk);
  if (!walk.safe) return;
  if (t->cancel_async_ && t->CancelDue()) {
    // No sigreturn will restore the interrupted mask: put it back before leaving by unwinding.
    sys::Call(SYS_rt_sigprocmask, SIG_SETMASK, &static_cast<ucontext_t*>(uc)->uc_sigmask, nullptr,
              sizeof(uint64_t));
    t->Exit(PTHREAD_CANCELED);
  }
  if (!t->DeliverSignals()) EndRewoundSyscallWithEintr(uc);  // no SA_RESTART: as the kernel
}

}  // namespace gonet::core
