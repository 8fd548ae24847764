// `gonet dump PID`: every waiter of a running program, what it waits on, for how long and where,
// taken without stopping it. The protocol (two rounds of SIGURG requests over the segment's dump
// area) is core/observe/dump.h's; this is the dumper's side.
#include "preload/cli_dump.h"

#include <signal.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/stats/dump_area.h"
#include "preload/dump_proc.h"
#include "preload/inspect_segment.h"

namespace gonet::cli {
namespace {

using core::DumpArea;
using core::DumpSlot;
using core::ShmHeader;

const char kDumpUsage[] =
    "usage: gonet dump PID\n"
    "  list every waiter of a running program (threads blocked or parked in socket calls, parked\n"
    "  fibers): fd, op or reason, peer, how long, and where (backtrace), without stopping it\n"
    "  (its own user or root only)\n";

int SendRequest(long pid, int tid, uint64_t seq) {
  siginfo_t si{};
  si.si_signo = SIGURG;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_ptr = reinterpret_cast<void*>(core::DumpSignalValue(seq));
  return static_cast<int>(syscall(SYS_rt_tgsigqueueinfo, pid, tid, SIGURG, &si));
}

// The dumper's bounds on waiting: a thread answers within microseconds, and one that does not (it
// blocks SIGURG, or left the call) is reported as such rather than waited for. The first answer
// also unwinds every fiber, which takes longer in a program with thousands.
constexpr int64_t kAnswerLimitNs = 500 * 1000000LL;
constexpr int64_t kCopyLimitNs = 5000 * 1000000LL;

// The request's state as the dumper sees it.
struct DumpView {
  const DumpArea* area;
  uint64_t seq;
  bool have_waits = false;
  std::vector<const core::DumpWait*> waits{};
  std::vector<const DumpSlot*> slots{};

  void ReadWaits() {
    have_waits = area->waits_done.load(std::memory_order_acquire) == seq;
    waits.clear();
    if (!have_waits) return;
    uint32_t n = std::min(area->waits_count.load(std::memory_order_relaxed), core::kDumpWaits);
    for (uint32_t i = 0; i < n; ++i) waits.push_back(&area->waits[i]);
  }
  void ReadSlots() {
    slots.clear();
    uint32_t used = std::min(area->used.load(std::memory_order_acquire), core::kDumpSlots);
    for (uint32_t i = 0; i < used; ++i) {
      if (area->slots[i].seq.load(std::memory_order_acquire) == seq) {
        slots.push_back(&area->slots[i]);
      }
    }
  }
  const DumpSlot* SlotOfThread(int tid) const {
    for (const DumpSlot* s : slots) {
      if (s->fiber == 0 && s->tid == tid) return s;
    }
    return nullptr;
  }
  const DumpSlot* SlotAt(int32_t i) const {
    if (i < 0 || static_cast<uint32_t>(i) >= core::kDumpSlots) return nullptr;
    const DumpSlot* s = &area->slots[i];
    return s->seq.load(std::memory_order_acquire) == seq ? s : nullptr;
  }
};

void PrintFrames(const DumpSlot& s, const std::vector<Mapping>& maps) {
  int frames = std::min(s.nframes, core::kDumpFrames);
  for (int i = 0; i < frames; ++i) {
    char name[core::kDumpNameSize + 1];
    memcpy(name, s.name[i], core::kDumpNameSize);
    name[core::kDumpNameSize] = '\0';
    std::string module = ModuleOf(maps, s.pc[i]);
    printf("  #%-2d 0x%016llx %s+0x%llx  %s\n", i, static_cast<unsigned long long>(s.pc[i]),
           Demangle(name).c_str(), static_cast<unsigned long long>(s.offset[i]), module.c_str());
  }
}

// "fd 5, op r (recv), waiting 1.2s" or "mutex, waiting 3.0ms": what a waiter waits on.
std::string WhatLine(int fd, int op, int64_t since_ns, int64_t now_ns) {
  std::string out;
  if (IsSocketOp(op)) {
    char buf[64];
    snprintf(buf, sizeof buf, "fd %d, op %c (%s)", fd, static_cast<char>(op), OpName(op));
    out = buf;
  } else if (op != 0) {
    out = OpName(op);
  } else {
    out = "parked";
  }
  if (since_ns != 0) out += ", waiting " + Seconds(now_ns - since_ns);
  return out;
}

void PrintAnswer(const DumpSlot& s, const std::vector<Mapping>& maps) {
  if (IsSocketOp(s.op)) {
    printf("  local %s  peer %s\n", FormatAddress(s.local, s.local_len).c_str(),
           FormatAddress(s.peer, s.peer_len).c_str());
  }
  PrintFrames(s, maps);
}

// One dump request in progress: the target, its threads, and who was asked.
struct Request {
  long pid = 0;
  DumpArea* area = nullptr;
  uint64_t seq = 0;
  bool kernel_wait = false;  // threads mode's kernel wait: blocked receives answer too
  bool answering = false;    // gonet's SIGURG handler is installed in the target
  std::vector<Task> tasks;
  bool readable = true;                         // every task's syscall line could be read
  std::unordered_map<int, uint64_t> parker_of;  // tid -> the futex its ThreadParker sleeps on
  int asked = 0;

  void Ask(Task& t) {
    if (SendRequest(pid, t.tid, seq) == 0) {
      t.signalled = true;
      ++asked;
    }
  }
  // A thread asleep on its own published parker futex: gonet's wait, which resumes after the
  // request (dump.h).
  bool OnOwnFutex(int tid, long nr, unsigned long long arg0) const {
    auto it = parker_of.find(tid);
    return nr == SYS_futex && it != parker_of.end() && it->second == arg0;
  }
  Task* FindTask(int tid) {
    auto t = std::find_if(tasks.begin(), tasks.end(), [&](const Task& x) { return x.tid == tid; });
    return t != tasks.end() ? &*t : nullptr;
  }
};

// The published parkers. Read tid, addr, tid: an entry changing hands is not trusted.
void ReadParkers(Request* r) {
  for (uint32_t i = 0; i < core::kDumpParkers; ++i) {
    const core::DumpParker& p = r->area->parkers[i];
    int tid = p.tid.load(std::memory_order_acquire);
    if (tid == 0) continue;
    uint64_t addr = p.addr.load(std::memory_order_acquire);
    if (p.tid.load(std::memory_order_acquire) == tid) r->parker_of[tid] = addr;
  }
}

// Round one: one thread that is safe to interrupt copies the waiters (and walks the fibers).
// Two rounds, so that a thread blocked in a receive that is not gonet's (a library's own blocking
// socket, which would see the EINTR) is not signalled.
void AskFirst(Request* r) {
  if (!r->answering) return;
  Task* first = nullptr;
  for (Task& t : r->tasks) {
    if (!GonetThread(t.comm) && r->OnOwnFutex(t.tid, t.syscall, t.arg0)) {
      first = &t;
      break;
    }
  }
  if (first == nullptr && r->kernel_wait) {
    for (Task& t : r->tasks) {
      if (SignalSafeSyscall(t.syscall)) {
        first = &t;
        break;
      }
    }
  }
  // Else gonet's own answerer (fibers mode's sysmon: dump.h round one).
  if (int a = r->area->answerer_tid.load(std::memory_order_acquire); first == nullptr && a != 0) {
    first = r->FindTask(a);
  }
  if (first == nullptr) return;
  r->Ask(*first);
  int64_t copied_until = MonoNs() + kCopyLimitNs;
  while (first->signalled && r->area->waits_done.load(std::memory_order_acquire) != r->seq &&
         MonoNs() < copied_until) {
    usleep(1000);
  }
}

// Round two: every other thread the records show waiting, if /proc still shows it waiting there
// (re-read now: it may have moved on since). Returns the threads asked that owe a slot.
std::vector<int> AskTheOthers(Request* r, const DumpView& view) {
  std::vector<int> expected;
  for (const core::DumpWait* w : view.waits) {
    if (w->fiber != 0 || w->tid == 0) continue;
    Task* t = r->FindTask(w->tid);
    if (t == nullptr) continue;
    if (!t->signalled) {
      long nr = -1;
      unsigned long long arg0 = 0;
      if (!ReadSyscall(r->pid, t->tid, &nr, &arg0)) continue;
      bool safe = false;
      if (w->flags & core::kDumpWaitKernel) {
        safe = (w->flags & core::kDumpWaitHasTimeout) == 0 && SignalSafeSyscall(nr) &&
               static_cast<long long>(arg0) == w->fd;
      } else if (w->flags & core::kDumpWaitParker) {
        safe = nr == SYS_futex && arg0 == w->addr;
      }
      if (safe) r->Ask(*t);
    }
    if (t->signalled) expected.push_back(t->tid);
  }
  return expected;
}

// Waits (bounded) for every asked thread's answer.
void AwaitAnswers(DumpView* view, const std::vector<int>& expected) {
  int64_t until = MonoNs() + kAnswerLimitNs;
  for (;;) {
    view->ReadSlots();
    bool all = std::all_of(expected.begin(), expected.end(),
                           [&](int tid) { return view->SlotOfThread(tid) != nullptr; });
    if (all || MonoNs() > until) return;
    usleep(2000);
  }
}

struct ThreadWaiter {
  Task* task;
  const core::DumpWait* wait;  // nullptr: seen in /proc only
};

// Threads: the records, then threads /proc shows in a socket call that gonet has no record of;
// fibers: the records. Both sorted by number.
void CollectWaiters(Request* r, const DumpView& view, std::vector<ThreadWaiter>* threads,
                    std::vector<const core::DumpWait*>* fibers) {
  for (const core::DumpWait* w : view.waits) {
    if (w->fiber != 0) {
      fibers->push_back(w);
    } else if (Task* t = r->FindTask(w->tid)) {
      threads->push_back({t, w});
    }
  }
  for (Task& t : r->tasks) {
    if (!SocketSyscall(t.syscall)) continue;
    bool known = std::any_of(threads->begin(), threads->end(),
                             [&](const ThreadWaiter& x) { return x.task->tid == t.tid; });
    if (!known) threads->push_back({&t, nullptr});
  }
  std::sort(threads->begin(), threads->end(),
            [](const ThreadWaiter& a, const ThreadWaiter& b) { return a.task->tid < b.task->tid; });
  std::sort(fibers->begin(), fibers->end(),
            [](const core::DumpWait* a, const core::DumpWait* b) { return a->fiber < b->fiber; });
}

// The first lines: the process, and whatever limits what follows.
void PrintHeader(const Request& r, const ShmHeader& h, const DumpView& view, size_t threads,
                 size_t fibers, int64_t now) {
  printf("gonet dump: pid %d, mode %s, uptime %s: %zu thread(s) and %zu fiber(s) waiting\n", h.pid,
         ModeName(h.mode), Seconds(now - h.start_mono_ns).c_str(), threads, fibers);
  if (!r.readable) {
    printf(
        "  (some threads' /proc/%ld/task/*/syscall could not be read: run as root, or allow "
        "ptrace of your own processes)\n",
        r.pid);
  }
  if (!r.answering) {
    printf(
        "  (mode %s: gonet does not answer dump requests in this process (no wait has parked "
        "yet, or passthrough); this dump lists kernel-blocked threads only, without "
        "backtraces)\n",
        ModeName(h.mode));
  } else if (!view.have_waits) {
    printf(
        "  (no thread could be asked safely, or none answered: waiters on the netpoller path "
        "and fibers are not listed; kernel-blocked threads are listed without backtraces)\n");
  }
  if (r.area->fibers_skip.load(std::memory_order_relaxed) != 0) {
    printf("  (fibers not listed: the thread asked was one of gonet's)\n");
  }
}

// Why a listed thread has no backtrace.
void PrintNoBacktrace(const Request& r, const ShmHeader& h, const Task& t, const core::DumpWait* w,
                      int op) {
  if (!r.answering) {
    printf("  (no backtrace in mode %s)\n", ModeName(h.mode));
  } else if (w == nullptr) {
    printf("  (no backtrace: not inside a gonet call, so not interrupted)\n");
  } else if ((w->flags & core::kDumpWaitKernel) && !SignalSafeSyscall(t.syscall)) {
    printf("  (no backtrace: interrupting a blocking %s could change its result)\n", OpName(op));
  } else if (w->flags & core::kDumpWaitHasTimeout) {
    printf(
        "  (no backtrace: the socket has SO_RCVTIMEO, and the restarted call would wait "
        "the whole timeout again)\n");
  } else if (t.signalled && r.area->used.load(std::memory_order_relaxed) >= core::kDumpSlots) {
    printf("  (no backtrace: a dump holds at most %u)\n", core::kDumpSlots);
  } else if (t.signalled) {
    printf("  (no answer within %s: the thread blocks SIGURG, or left the wait)\n",
           Seconds(kAnswerLimitNs).c_str());
  } else {
    printf("  (no backtrace: not asleep in the wait when asked, so not interrupted)\n");
  }
}

void PrintThread(const Request& r, const ShmHeader& h, const DumpView& view, const ThreadWaiter& x,
                 const std::vector<Mapping>& maps) {
  const Task& t = *x.task;
  const core::DumpWait* w = x.wait;
  printf("\n");
  if (const DumpSlot* s = view.SlotOfThread(t.tid)) {
    printf("thread %d \"%s\": %s\n", t.tid, t.comm.c_str(),
           WhatLine(s->fd, s->op, s->since_ns, s->now_ns).c_str());
    PrintAnswer(*s, maps);
    return;
  }
  int op = w != nullptr ? w->op : SyscallOp(t.syscall);
  int fd = w != nullptr ? w->fd : static_cast<int>(t.arg0);
  printf("thread %d \"%s\": %s\n", t.tid, t.comm.c_str(),
         WhatLine(fd, op, w != nullptr ? w->since_ns : 0, r.area->waits_now_ns).c_str());
  PrintNoBacktrace(r, h, t, w, op);
}

void PrintFiber(const Request& r, const DumpView& view, const core::DumpWait* w,
                const std::vector<Mapping>& maps) {
  const DumpSlot* s = view.SlotAt(w->slot);
  printf("\nfiber %u: ", w->fiber);
  if (w->flags & core::kDumpWaitRunnable) {
    printf("runnable (queued to run)\n");
  } else {
    printf("%s\n",
           WhatLine(w->fd, w->op, w->since_ns, s != nullptr ? s->now_ns : r.area->waits_now_ns)
               .c_str());
  }
  if (s != nullptr) {
    PrintAnswer(*s, maps);
  } else {
    printf("  (no backtrace: a dump unwinds at most %u fibers)\n", core::kDumpFiberSlots);
  }
}

// One dump at a time per program: the request number and slot counter are the dumper's.
bool LockDump(const Segment& seg, long pid) {
  int64_t lock_until = MonoNs() + 2 * 1000000000LL;
  while (flock(seg.fd, LOCK_EX | LOCK_NB) != 0) {
    if (MonoNs() > lock_until) {
      fprintf(stderr, "gonet dump: another gonet dump of process %ld is in progress\n", pid);
      return false;
    }
    usleep(10000);
  }
  return true;
}

// The command line: PID [-h|--help]. Returns -1 to go on, or the exit status.
int ParseDumpArgs(int argc, char** argv, long* pid) {
  cxxopts::Options options("gonet dump");
  cxxopts::ParseResult parsed;
  return ParsePidCommand("dump", &options, argc, argv, "gonet dump PID", kDumpUsage, pid, &parsed);
}

}  // namespace

int DumpCommand(int argc, char** argv) {
  long pid = 0;
  if (int status = ParseDumpArgs(argc, argv, &pid); status >= 0) return status;
  Segment seg;
  if (int rc = OpenSegment("dump", pid, /*writable=*/true, &seg)) return rc;
  if (!LockDump(seg, pid)) return kExitFailed;
  const ShmHeader& h = *seg.header;
  Request r;
  r.pid = pid;
  r.area = seg.Area();
  r.kernel_wait = (h.flags & core::kShmFlagKernelWait) != 0;
  r.answering = r.kernel_wait || r.area->answering.load(std::memory_order_acquire) != 0;
  r.tasks = ReadTasks(pid, &r.readable);
  r.seq = r.area->seq.load(std::memory_order_relaxed) + 1;
  r.area->used.store(0, std::memory_order_relaxed);
  r.area->fibers_skip.store(0, std::memory_order_relaxed);
  r.area->seq.store(r.seq, std::memory_order_seq_cst);
  DumpView view{r.area, r.seq};
  ReadParkers(&r);
  AskFirst(&r);
  view.ReadWaits();
  AwaitAnswers(&view, AskTheOthers(&r, view));
  std::vector<Mapping> maps = ReadMaps(pid);
  int64_t now = MonoNs();

  std::vector<ThreadWaiter> threads;
  std::vector<const core::DumpWait*> fibers;
  CollectWaiters(&r, view, &threads, &fibers);
  uint32_t more = view.have_waits ? r.area->waits_more.load(std::memory_order_relaxed) : 0;
  PrintHeader(r, h, view, threads.size(), fibers.size() + more, now);
  for (const ThreadWaiter& x : threads) PrintThread(r, h, view, x, maps);
  for (const core::DumpWait* w : fibers) PrintFiber(r, view, w, maps);
  if (more != 0) {
    printf("\n... and %u more fiber(s) or thread(s) waiting (a dump lists at most %u)\n", more,
           core::kDumpWaits);
  }
  if (threads.empty() && fibers.empty() && more == 0) printf("\n(nothing is waiting)\n");
  fflush(stdout);
  return 0;
}

}  // namespace gonet::cli
