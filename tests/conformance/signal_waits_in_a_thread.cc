// sigsuspend, pause and sigpending on a thread that is not the main one, with the signals blocked
// in every thread except for the wait: sigsuspend(mask) ends with -1 EINTR once a signal its mask
// lets through has run its handler on the waiting thread, whether the signal was sent to the
// thread (pthread_kill: SI_TKILL) or to the process (kill: SI_USER; alarm: SI_KERNEL), and the
// thread's mask is its own again afterwards; of two threads in sigsuspend, one process-directed
// signal ends exactly one wait and runs the handler once, on that thread, and a second ends the
// other; a signal the sigsuspend mask blocks (sent to the thread or to the process) stays
// pending, sigpending reports it, and its handler runs once the thread unblocks it; pause ends
// the same way, with the thread's own mask.
//
// The waiting thread must not hold anything the others need: fibers mode runs this scenario on
// one worker (GONET_WORKERS=1, issue 18), and one stage has the signal sent by a pthread that
// first bounces a byte through pipes with a third one, all fibers on that one OS thread.
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "ping_pong.h"
#include "transcript.h"

using namespace conf;

namespace {

std::atomic<int> g_handled[65];
std::atomic<int> g_code{0};
thread_local int t_ran = 0;  // handlers run on this thread

void OnSignal(int sig, siginfo_t* si, void*) {
  ++t_ran;
  g_code.store(si->si_code);
  g_handled[sig].fetch_add(1);
}

thread_local sigjmp_buf t_env;
void JumpOut(int) { siglongjmp(t_env, 1); }

void Handle(int sig) {
  struct sigaction sa {};
  sa.sa_sigaction = OnSignal;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(sig, &sa, nullptr), "sigaction");
}

const char* Code(int c) {
  return c == SI_USER ? "SI_USER" : c == SI_TKILL ? "SI_TKILL" : c == SI_KERNEL ? "SI_KERNEL" : "?";
}

// The calling thread's mask without sig.
sigset_t Without(int sig) {
  sigset_t s;
  pthread_sigmask(SIG_SETMASK, nullptr, &s);
  sigdelset(&s, sig);
  return s;
}

bool Blocked(int sig) {
  sigset_t s;
  pthread_sigmask(SIG_SETMASK, nullptr, &s);
  return sigismember(&s, sig) == 1;
}

// What one waiting thread saw.
struct Wait {
  std::atomic<bool> in{false};
  std::atomic<bool> out{false};
  long r = 0;
  int err = 0;
  int ran = 0;                 // handlers run on this thread during the wait
  bool still_blocked = false;  // the signal it waited for is blocked again after the wait
};

// sigsuspend with the thread's mask less `sig`.
void Suspend(Wait* w, int sig) {
  sigset_t m = Without(sig);
  int before = t_ran;
  w->in = true;
  w->r = sigsuspend(&m);
  w->err = errno;
  w->ran = t_ran - before;
  w->still_blocked = Blocked(sig);
  w->out = true;
}

void Report(const char* what, const Wait& w) {
  Say("%s -> %ld %s, handlers run on the waiting thread: %d, blocked again after: %s", what, w.r,
      w.r < 0 ? ErrnoName(w.err) : "", w.ran, YesNo(w.still_blocked));
}

void WaitIn(const Wait& w) {
  while (!w.in) SleepMs(1);
  SleepMs(30);  // let it block in the wait (a signal sent before stays pending: same transcript)
}

void ShowPending(const char* when) {
  sigset_t p;
  sigemptyset(&p);
  int r = sigpending(&p);
  Say("sigpending %s -> %d: SIGUSR1 %s, SIGUSR2 %s, SIGHUP %s", when, r,
      YesNo(sigismember(&p, SIGUSR1) == 1), YesNo(sigismember(&p, SIGUSR2) == 1),
      YesNo(sigismember(&p, SIGHUP) == 1));
}

}  // namespace

int main() {
  alarm(60);  // a wait that never ends kills the run instead of hanging it
  for (int sig : {SIGUSR1, SIGUSR2, SIGHUP}) Handle(sig);
  sigset_t all;
  sigemptyset(&all);
  for (int sig : {SIGUSR1, SIGUSR2, SIGHUP, SIGALRM}) sigaddset(&all, sig);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // inherited by every thread made after this

  Say("== sigsuspend, kill to the process");
  {
    Wait w;
    std::thread t(Suspend, &w, SIGUSR1);
    WaitIn(w);
    Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
    t.join();
    Report("sigsuspend", w);
    Say("si_code %s", Code(g_code));
  }

  Say("== sigsuspend, pthread_kill to the waiting thread");
  {
    Wait w;
    std::thread t(Suspend, &w, SIGUSR1);
    WaitIn(w);
    ShowRc(pthread_kill(t.native_handle(), SIGUSR1), "pthread_kill(SIGUSR1)");
    t.join();
    Report("sigsuspend", w);
    Say("si_code %s", Code(g_code));
  }

  Say("== two threads in sigsuspend, one kill to the process, then another");
  {
    Wait a, b;
    g_handled[SIGUSR1] = 0;
    std::thread ta(Suspend, &a, SIGUSR1);
    std::thread tb(Suspend, &b, SIGUSR1);
    WaitIn(a);
    WaitIn(b);
    Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
    while (!a.out && !b.out) SleepMs(1);
    SleepMs(100);  // the other one, had it returned too, would have by now
    Say("waits ended: %d, handler runs: %d", int{a.out} + int{b.out}, g_handled[SIGUSR1].load());
    Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
    ta.join();
    tb.join();
    Say("waits ended: %d, handler runs: %d", int{a.out} + int{b.out}, g_handled[SIGUSR1].load());
    Report("first sigsuspend", a);
    Report("second sigsuspend", b);
  }

  Say("== a signal the sigsuspend mask blocks stays pending until the thread unblocks it");
  {
    std::atomic<bool> sent{false}, shown{false};
    Wait w;
    g_handled[SIGUSR2] = 0;
    g_handled[SIGHUP] = 0;
    std::thread t([&] {
      while (!sent) SleepMs(1);
      ShowPending("before the wait");
      Suspend(&w, SIGUSR1);  // SIGUSR2 and SIGHUP stay blocked
      while (!shown) SleepMs(1);
      Report("sigsuspend", w);
      Say("SIGUSR2 handled %d, SIGHUP handled %d", g_handled[SIGUSR2].load(),
          g_handled[SIGHUP].load());
      ShowPending("after the wait");
      sigset_t both;
      sigemptyset(&both);
      sigaddset(&both, SIGUSR2);
      sigaddset(&both, SIGHUP);
      int before = t_ran;
      ShowRc(pthread_sigmask(SIG_UNBLOCK, &both, nullptr),
             "pthread_sigmask(UNBLOCK SIGUSR2 SIGHUP)");
      Say("handlers run before it returned: %d (SIGUSR2 %d, SIGHUP %d)", t_ran - before,
          g_handled[SIGUSR2].load(), g_handled[SIGHUP].load());
      ShowPending("after unblocking");
    });
    ShowRc(pthread_kill(t.native_handle(), SIGUSR2), "pthread_kill(SIGUSR2)");
    Show(kill(getpid(), SIGHUP), "kill(getpid(), SIGHUP)");
    sent = true;
    WaitIn(w);
    Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
    shown = true;
    t.join();
  }

  Say("== pause, pthread_kill and kill to a thread that does not block the signal");
  for (int how = 0; how < 2; ++how) {
    Wait w;
    std::thread t([&] {
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, SIGUSR1);
      pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
      int before = t_ran;
      w.in = true;
      w.r = pause();
      w.err = errno;
      w.ran = t_ran - before;
      w.still_blocked = !Blocked(SIGUSR1);  // its own mask is unchanged: still unblocked
      w.out = true;
      // Blocked again before it ends: the scenario's later kills have the waiting thread alone
      // not blocking SIGUSR1 (in fibers mode a worker keeps the mask of the last fiber it ran).
      pthread_sigmask(SIG_BLOCK, &one, nullptr);
    });
    WaitIn(w);
    if (how == 0) {
      ShowRc(pthread_kill(t.native_handle(), SIGUSR1), "pthread_kill(SIGUSR1)");
    } else {
      Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
    }
    t.join();
    Say("pause -> %ld %s, handlers run on the waiting thread: %d, SIGUSR1 still unblocked: %s", w.r,
        w.r < 0 ? ErrnoName(w.err) : "", w.ran, YesNo(w.still_blocked));
    Say("si_code %s", Code(g_code));
  }

  Say("== sigsuspend, another thread works with a third, then kill and pthread_kill");
  for (int how = 0; how < 2; ++how) {
    Wait w;
    std::thread t(Suspend, &w, SIGUSR1);
    WaitIn(w);
    pthread_t target = t.native_handle();
    std::thread sender([how, target] {
      Say("other threads ran while it waited: ping-pong checksum %08x", PingPong(50));
      if (how == 0) {
        Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1) from another thread");
      } else {
        ShowRc(pthread_kill(target, SIGUSR1), "pthread_kill(SIGUSR1) from another thread");
      }
    });
    sender.join();
    t.join();
    Report("sigsuspend", w);
  }

  Say("== a handler that siglongjmps out of sigsuspend, then another sigsuspend");
  {
    struct sigaction sa {};
    sa.sa_handler = JumpOut;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, nullptr);
    std::atomic<bool> in{false}, jumped{false}, blocked_after{false};
    Wait w;
    std::thread t([&] {
      if (sigsetjmp(t_env, 1) == 0) {
        sigset_t m = Without(SIGUSR2);
        in = true;
        sigsuspend(&m);
      } else {
        jumped = true;
        blocked_after = Blocked(SIGUSR2);
      }
      Suspend(&w, SIGUSR1);
    });
    while (!in) SleepMs(1);
    SleepMs(30);
    Show(kill(getpid(), SIGUSR2), "kill(getpid(), SIGUSR2)");
    WaitIn(w);
    Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
    t.join();
    Say("jumped out: %s, SIGUSR2 blocked after: %s", YesNo(jumped), YesNo(blocked_after));
    Report("next sigsuspend", w);
    Handle(SIGUSR2);
  }

  Say("== sigsuspend, SIGALRM from alarm");
  {
    Handle(SIGALRM);
    Wait w;
    std::thread t([&] {
      alarm(1);
      Suspend(&w, SIGALRM);
    });
    t.join();
    Report("sigsuspend", w);
    Say("si_code %s, SIGALRM handled %d", Code(g_code), g_handled[SIGALRM].load());
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGALRM, &dfl, nullptr);
  }
  return 0;
}
