// Whatever installs a disposition (sigaction, __sigaction, signal, bsd_signal, ssignal,
// sysv_signal, sigset, sigignore, siginterrupt), sigaction(sig, NULL, &old) reads back exactly
// what glibc and the kernel keep: the handler, sa_flags bit for bit (glibc's SA_RESTORER
// included, SA_RESETHAND and SA_NODEFER as given, SA_RESTART as siginterrupt left it) and sa_mask
// less SIGKILL and SIGSTOP, which the kernel drops; signal() and sigset() return the previous
// handler, or SIG_HOLD. A disposition nobody changed reads back as the exec left it (flags 0).
// SA_RESETHAND (and sysv_signal) run the handler once, with sa_mask and the signal itself (unless
// SA_NODEFER) blocked during it, and leave SIG_DFL with the flags and mask kept; that SIG_DFL,
// SA_SIGINFO still set, is the default action (SIGWINCH: nothing), no handler. sigset(SIG_HOLD),
// sighold, sigrelse, sigblock, sigsetmask and siggetmask change and report the calling thread's
// own mask, as pthread_sigmask sees it, and no other thread's. All of it is checked on the main
// thread and again in a second thread (in gonet's fibers mode a fiber, whose mask is gonet's).
// Last, a handler installed with signal() in a thread that alone unblocks the signal runs once,
// on that thread, for kill() to the process (a bounded wait: a lost signal shows as 0 runs).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "transcript.h"

using namespace conf;

// sigset, sighold, sigrelse, sigignore, siginterrupt, sigblock, sigsetmask, siggetmask:
// deprecated in glibc's headers, still exported, and what this scenario is about.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

// Exported by glibc; <signal.h> declares bsd_signal only for old X/Open programs.
extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);
extern "C" sighandler_t bsd_signal(int, sighandler_t);

namespace {

constexpr int kBoundMs = 5000;  // a signal that went astray shows as a missing run, never a hang

std::atomic<int> g_runs[65];                  // handler runs per signal
std::atomic<uint64_t> g_mask_in_handler[65];  // the thread's mask during the last run
std::atomic<bool> g_on_target{false};
std::atomic<pthread_t> g_target{};

// glibc's sigmask(sig), which its header marks deprecated with a warning no pragma silences.
int BsdBit(int sig) { return static_cast<int>(1u << (sig - 1)); }

uint64_t Word(const sigset_t& set) {
  uint64_t w = 0;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sigismember(&set, sig) == 1) w |= uint64_t{1} << (sig - 1);
  }
  return w;
}

uint64_t ThreadMask() {
  sigset_t cur;
  if (pthread_sigmask(SIG_BLOCK, nullptr, &cur) != 0) Fail("pthread_sigmask query");
  return Word(cur);
}

void Note(int sig) {
  g_mask_in_handler[sig].store(ThreadMask());
  g_on_target.store(pthread_equal(pthread_self(), g_target.load()) != 0);
  g_runs[sig].fetch_add(1);
}

void HandlerA(int sig) { Note(sig); }
void HandlerB(int sig) { Note(sig); }
void InfoC(int sig, siginfo_t*, void*) { Note(sig); }

// Signal numbers as names: SIGRTMIN is glibc's, read at run time.
std::string SigName(int sig) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal#" + std::to_string(sig);
}

std::string List(uint64_t word) {
  std::string s = "{";
  for (int sig = 1; sig <= 64; ++sig) {
    if ((word & (uint64_t{1} << (sig - 1))) == 0) continue;
    if (s.size() > 1) s += ' ';
    s += SigName(sig);
  }
  return s + "}";
}

const char* Who(const void* h) {
  if (h == reinterpret_cast<void*>(SIG_DFL)) return "SIG_DFL";
  if (h == reinterpret_cast<void*>(SIG_IGN)) return "SIG_IGN";
  if (h == reinterpret_cast<void*>(SIG_HOLD)) return "SIG_HOLD";
  if (h == reinterpret_cast<void*>(SIG_ERR)) return "SIG_ERR";
  if (h == reinterpret_cast<void*>(&HandlerA)) return "HandlerA";
  if (h == reinterpret_cast<void*>(&HandlerB)) return "HandlerB";
  if (h == reinterpret_cast<void*>(&InfoC)) return "InfoC";
  return "an unknown handler";
}
const char* Who(sighandler_t h) { return Who(reinterpret_cast<void*>(h)); }

// The previous handler a signal()-style call returned ("SIG_ERR EINVAL" on failure).
void ShowPrev(sighandler_t prev, const char* what, int sig) {
  int err = errno;
  Say("%s(%s) -> %s%s%s", what, SigName(sig).c_str(), Who(prev), prev == SIG_ERR ? " " : "",
      prev == SIG_ERR ? ErrnoName(err) : "");
}

void ReadBack(int sig) {
  struct sigaction old {};
  if (sigaction(sig, nullptr, &old) != 0) Fail("sigaction read-back");
  Say("  reads back: handler %s, sa_flags %#x, sa_mask %s, restorer %s",
      Who(reinterpret_cast<void*>(old.sa_sigaction)), static_cast<unsigned>(old.sa_flags),
      List(Word(old.sa_mask)).c_str(), old.sa_restorer != nullptr ? "set" : "none");
}

// What an installer of the signal() family returned, then what sigaction reads back after it.
void ShowPrevAndReadBack(sighandler_t prev, const char* what, int sig) {
  ShowPrev(prev, what, sig);
  ReadBack(sig);
}

void ShowMask(const char* when) {
  Say("  %s: this thread blocks %s", when, List(ThreadMask()).c_str());
}

void Reset(int sig) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  Must(sigaction(sig, &dfl, nullptr), "sigaction SIG_DFL");
}

struct Action {
  const char* how;
  void* handler;  // SIG_DFL, SIG_IGN or one of ours
  unsigned flags;
  std::vector<int> mask;
  bool fill = false;
};

std::vector<int> Signals() {
  return {SIGUSR1, SIGUSR2, SIGHUP, SIGTERM, SIGCHLD, SIGALRM, SIGWINCH, SIGRTMIN + 3};
}

// 1. Every way to install, read back after each.
void InstallEveryWay(int sig) {
  Say("== %s: every way to install", SigName(sig).c_str());
  const std::vector<Action> actions = {
      {"sigaction",
       reinterpret_cast<void*>(&InfoC),
       SA_SIGINFO | SA_RESTART,
       {SIGINT, SIGKILL, SIGSTOP, SIGRTMIN + 5}},
      {"sigaction",
       reinterpret_cast<void*>(&HandlerA),
       SA_ONSTACK | SA_NODEFER,
       {SIGQUIT, SIGKILL}},
      {"sigaction",
       reinterpret_cast<void*>(&InfoC),
       SA_SIGINFO | SA_RESETHAND | SA_NODEFER | SA_ONSTACK,
       {}},
      {"sigaction", reinterpret_cast<void*>(&HandlerB), SA_RESTART | SA_RESETHAND, {}, true},
      {"sigaction", reinterpret_cast<void*>(SIG_IGN), SA_RESTART, {SIGUSR1, SIGPIPE}},
      {"sigaction", reinterpret_cast<void*>(SIG_DFL), SA_SIGINFO, {SIGKILL, SIGTERM}},
      {"__sigaction", reinterpret_cast<void*>(&InfoC), SA_SIGINFO | SA_RESTART, {SIGHUP}},
      {"sigaction", reinterpret_cast<void*>(SIG_DFL), 0, {}},
  };
  for (const Action& a : actions) {
    struct sigaction act {};
    act.sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(a.handler);
    act.sa_flags = static_cast<int>(a.flags);
    sigemptyset(&act.sa_mask);
    if (a.fill) sigfillset(&act.sa_mask);
    for (int m : a.mask) sigaddset(&act.sa_mask, m);
    struct sigaction prev {};
    int (*fn)(int, const struct sigaction*, struct sigaction*) =
        std::string(a.how) == "__sigaction" ? &__sigaction : &sigaction;
    int r = fn(sig, &act, &prev);
    Show(r, "%s(%s, %s, flags %#x, mask %s%s), previous %s", a.how, SigName(sig).c_str(),
         Who(a.handler), static_cast<unsigned>(a.flags), a.fill ? "all" : "",
         a.fill ? "" : List(Word(act.sa_mask)).c_str(),
         Who(reinterpret_cast<void*>(prev.sa_sigaction)));
    ReadBack(sig);
  }
  ShowPrevAndReadBack(signal(sig, HandlerA), "signal", sig);
  ShowPrevAndReadBack(bsd_signal(sig, HandlerB), "bsd_signal", sig);
  ShowPrevAndReadBack(ssignal(sig, HandlerA), "ssignal", sig);
  ShowPrevAndReadBack(sysv_signal(sig, HandlerB), "sysv_signal", sig);
  ShowPrevAndReadBack(sigset(sig, HandlerA), "sigset", sig);
  Show(sigignore(sig), "sigignore(%s)", SigName(sig).c_str());
  ReadBack(sig);
  ShowPrevAndReadBack(sigset(sig, SIG_DFL), "sigset SIG_DFL", sig);
  ShowPrevAndReadBack(signal(sig, SIG_IGN), "signal SIG_IGN", sig);
  ShowPrevAndReadBack(signal(sig, SIG_DFL), "signal SIG_DFL", sig);
  Reset(sig);
}

// 2. siginterrupt: SA_RESTART off and on, for the installed action and later signal() calls.
void Siginterrupt(int sig) {
  Say("== %s: siginterrupt", SigName(sig).c_str());
  struct sigaction act {};
  act.sa_sigaction = InfoC;
  act.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGTERM);
  Must(sigaction(sig, &act, nullptr), "sigaction");
  Show(siginterrupt(sig, 1), "siginterrupt(%s, 1) over sigaction's handler", SigName(sig).c_str());
  ReadBack(sig);
  ShowPrevAndReadBack(signal(sig, HandlerA), "signal after siginterrupt 1", sig);
  Show(siginterrupt(sig, 0), "siginterrupt(%s, 0)", SigName(sig).c_str());
  ReadBack(sig);
  ShowPrevAndReadBack(signal(sig, HandlerB), "signal after siginterrupt 0", sig);
  Show(siginterrupt(sig, 1), "siginterrupt(%s, 1)", SigName(sig).c_str());
  ShowPrevAndReadBack(bsd_signal(sig, SIG_IGN), "bsd_signal SIG_IGN after siginterrupt 1", sig);
  Show(siginterrupt(sig, 0), "siginterrupt(%s, 0)", SigName(sig).c_str());
  Reset(sig);
}

// 3. SA_RESETHAND and sysv_signal: one run, then SIG_DFL.
void ResetHand(int sig) {
  Say("== %s: SA_RESETHAND", SigName(sig).c_str());
  struct sigaction act {};
  act.sa_sigaction = InfoC;
  act.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGHUP);
  sigaddset(&act.sa_mask, SIGKILL);
  Must(sigaction(sig, &act, nullptr), "sigaction");
  int before = g_runs[sig].load();
  Show(raise(sig), "raise(%s) with SA_SIGINFO|SA_RESETHAND, sa_mask {SIGHUP SIGKILL}",
       SigName(sig).c_str());
  Say("  handler runs: %d, blocked during it: %s", g_runs[sig].load() - before,
      List(g_mask_in_handler[sig].load()).c_str());
  ReadBack(sig);
  ShowMask("after the handler");
  if (sig == SIGWINCH) {
    // SIG_DFL kept SA_SIGINFO: still the default action (for SIGWINCH, nothing), no handler.
    before = g_runs[sig].load();
    Show(raise(sig), "raise(%s) again, SIG_DFL with SA_SIGINFO", SigName(sig).c_str());
    Show(pthread_kill(pthread_self(), sig), "pthread_kill(self, %s) again", SigName(sig).c_str());
    Say("  handler runs: %d", g_runs[sig].load() - before);
  }

  ShowPrev(sysv_signal(sig, HandlerA), "sysv_signal", sig);
  before = g_runs[sig].load();
  Show(pthread_kill(pthread_self(), sig), "pthread_kill(self, %s)", SigName(sig).c_str());
  Say("  handler runs: %d, blocked during it: %s", g_runs[sig].load() - before,
      List(g_mask_in_handler[sig].load()).c_str());
  ReadBack(sig);
  ShowMask("after the handler");
  Reset(sig);
}

// 4. The mask calls change this thread's mask.
void MaskCalls() {
  const int rt = SIGRTMIN + 3;
  Say("== the System V and BSD mask calls");
  sigset_t saved;
  Must(-pthread_sigmask(SIG_BLOCK, nullptr, &saved), "pthread_sigmask");
  ShowMask("at first");
  ShowPrev(signal(SIGUSR1, HandlerA), "signal", SIGUSR1);
  ShowPrev(sigset(SIGUSR1, SIG_HOLD), "sigset SIG_HOLD", SIGUSR1);
  ShowMask("after sigset SIG_HOLD");
  ReadBack(SIGUSR1);
  ShowPrev(sigset(SIGUSR1, SIG_HOLD), "sigset SIG_HOLD again", SIGUSR1);
  ShowPrev(sigset(SIGUSR1, HandlerB), "sigset HandlerB", SIGUSR1);
  ShowMask("after sigset HandlerB");
  ReadBack(SIGUSR1);
  ShowPrev(sigset(SIGUSR1, HandlerA), "sigset HandlerA", SIGUSR1);
  ShowPrev(sigset(rt, SIG_HOLD), "sigset SIG_HOLD", rt);
  ShowMask("after sigset SIG_HOLD");
  ShowPrev(sigset(rt, SIG_DFL), "sigset SIG_DFL", rt);
  ShowMask("after sigset SIG_DFL");
  ReadBack(rt);

  Show(sighold(SIGUSR2), "sighold(SIGUSR2)");
  Show(sighold(rt), "sighold(%s)", SigName(rt).c_str());
  ShowMask("after sighold");
  Show(sigrelse(SIGUSR2), "sigrelse(SIGUSR2)");
  ShowMask("after sigrelse");

  int old = sigblock(BsdBit(SIGHUP) | BsdBit(SIGTERM));
  Say("sigblock(SIGHUP|SIGTERM) -> %#x", static_cast<unsigned>(old));
  ShowMask("after sigblock");
  Say("siggetmask() -> %#x", static_cast<unsigned>(siggetmask()));
  int was = sigsetmask(BsdBit(SIGALRM));
  Say("sigsetmask(SIGALRM) -> %#x", static_cast<unsigned>(was));
  ShowMask("after sigsetmask (signals above 32 too)");
  Say("sigsetmask(what sigblock returned) -> %#x", static_cast<unsigned>(sigsetmask(old)));
  ShowMask("after sigsetmask");
  Say("sigblock(0) -> %#x", static_cast<unsigned>(sigblock(0)));
  Must(-pthread_sigmask(SIG_SETMASK, &saved, nullptr), "pthread_sigmask restore");
  Reset(SIGUSR1);
  Reset(rt);
}

void AllChecks(const char* where) {
  Say("==== on %s", where);
  for (int sig : Signals()) InstallEveryWay(sig);
  for (int sig : {SIGUSR1, SIGCHLD, SIGRTMIN + 3}) Siginterrupt(sig);
  for (int sig : {SIGUSR1, SIGUSR2, SIGWINCH, SIGRTMIN + 3}) ResetHand(sig);
  MaskCalls();
}

// 5. kill() to the process, the signal unblocked only in a thread that installed the handler.
void ProcessSignalToThread() {
  Say("==== kill to the process, SIGUSR2 unblocked only in a thread, handler from signal()");
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGUSR2);
  Must(-pthread_sigmask(SIG_BLOCK, &one, nullptr), "pthread_sigmask");
  std::atomic<bool> ready{false};
  int before = g_runs[SIGUSR2].load();
  g_on_target.store(false);
  std::thread t([&] {
    ShowPrev(signal(SIGUSR2, HandlerB), "signal in the thread", SIGUSR2);
    g_target.store(pthread_self());
    Must(-pthread_sigmask(SIG_UNBLOCK, &one, nullptr), "pthread_sigmask");
    ready.store(true);
    for (int i = 0; i < kBoundMs && g_runs[SIGUSR2].load() == before; ++i) SleepMs(1);
    SleepMs(20);  // a second run, were there one, shows
    Say("in the thread: handler runs %d, on this thread: %s", g_runs[SIGUSR2].load() - before,
        YesNo(g_on_target.load()));
  });
  for (int i = 0; i < kBoundMs && !ready.load(); ++i) SleepMs(1);
  Show(kill(getpid(), SIGUSR2), "kill(getpid(), SIGUSR2)");
  t.join();
  ReadBack(SIGUSR2);
  sigset_t pending;
  Must(sigpending(&pending), "sigpending");
  Say("pending afterwards: %s", List(Word(pending)).c_str());
  Must(-pthread_sigmask(SIG_UNBLOCK, &one, nullptr), "pthread_sigmask");
  Reset(SIGUSR2);
}

}  // namespace

int main() {
  alarm(60);  // a lost wake-up ends the run with SIGALRM in the transcript instead of a hang
  Say("==== untouched dispositions");
  for (int sig : Signals()) {
    Say("%s:", SigName(sig).c_str());
    ReadBack(sig);
  }
  Say("==== invalid");
  ShowPrev(signal(SIGKILL, HandlerA), "signal", SIGKILL);
  ShowPrev(sysv_signal(SIGSTOP, HandlerA), "sysv_signal", SIGSTOP);
  ShowPrev(sigset(SIGKILL, HandlerA), "sigset", SIGKILL);
  ShowPrev(signal(65, HandlerA), "signal", 65);
  Show(sigignore(SIGSTOP), "sigignore(SIGSTOP)");
  Show(siginterrupt(SIGKILL, 1), "siginterrupt(SIGKILL, 1)");

  AllChecks("the main thread");
  std::thread t([] { AllChecks("a second thread"); });
  t.join();
  Say("==== back on the main thread");
  ShowMask("the main thread's mask");
  ProcessSignalToThread();
  alarm(0);
  Say("done");
  return 0;
}
