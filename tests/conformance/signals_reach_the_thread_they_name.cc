// Thread-directed signals and per-thread masks: pthread_kill and pthread_sigqueue run the
// handler on the thread they name (pthread_self in the handler is that thread; SA_SIGINFO sees
// SI_TKILL or SI_QUEUE and the value); a thread parked in a sleep, a condition wait or a mutex
// is woken for it and its call returns as the kernel decides (nanosleep EINTR with the time
// left, cond wait and mutex lock never EINTR); a signal the thread blocks stays pending until
// it unblocks it, and each thread's mask is its own; a handler with SA_ONSTACK runs on the
// target's own sigaltstack.
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "transcript.h"

using namespace conf;

namespace {

std::atomic<int> g_handled{0};
std::atomic<bool> g_on_target{false};
std::atomic<int> g_code{0};
std::atomic<int> g_value{0};
pthread_t g_target;

void OnSignal(int sig, siginfo_t* si, void*) {
  (void)sig;
  g_on_target.store(pthread_equal(pthread_self(), g_target) != 0);
  g_code.store(si->si_code);
  g_value.store(si->si_code == SI_QUEUE ? si->si_value.sival_int : 0);
  g_handled.fetch_add(1);
}

void Install(bool restart) {
  struct sigaction sa {};
  sa.sa_sigaction = OnSignal;
  sa.sa_flags = SA_SIGINFO | (restart ? SA_RESTART : 0);
  sigemptyset(&sa.sa_mask);
  Must(sigaction(SIGUSR1, &sa, nullptr), "sigaction");
}

const char* Code(int c) { return c == SI_TKILL ? "SI_TKILL" : c == SI_QUEUE ? "SI_QUEUE" : "?"; }

// Waits until the handler has run `n` times (bounded: a lost signal shows as "no").
bool WaitHandled(int n) {
  for (int i = 0; i < 5000 && g_handled.load() < n; ++i) SleepMs(1);
  return g_handled.load() >= n;
}

std::atomic<int> g_stage{0};
std::atomic<long> g_result{0};
std::atomic<int> g_err{0};

void* Sleeper(void*) {
  g_stage.store(1);
  timespec req{30, 0}, rem{};
  long r = nanosleep(&req, &rem);
  g_err.store(errno);
  g_result.store(r == 0 ? 0 : (rem.tv_sec > 0 && rem.tv_sec <= 30 ? 1 : 2));
  g_stage.store(2);
  return nullptr;
}

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
bool g_go = false;

void* CondWaiter(void*) {
  pthread_mutex_lock(&g_mu);
  g_stage.store(1);
  int r = 0;
  while (!g_go) r = pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  g_result.store(r);
  g_stage.store(2);
  return nullptr;
}

void* MaskedWaiter(void*) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  g_stage.store(1);
  while (g_stage.load() != 3) SleepMs(1);  // main sends the signal meanwhile
  int before = g_handled.load();
  pthread_sigmask(SIG_UNBLOCK, &s, nullptr);  // delivered before this returns
  g_result.store(g_handled.load() - before);
  g_stage.store(4);
  return nullptr;
}

void Run(const char* what, void* (*fn)(void*), bool restart, bool queue) {
  Say("== %s, %s, %s", what, restart ? "SA_RESTART" : "no SA_RESTART",
      queue ? "pthread_sigqueue" : "pthread_kill");
  Install(restart);
  g_handled.store(0);
  g_stage.store(0);
  g_go = false;
  Must(-pthread_create(&g_target, nullptr, fn, nullptr), "pthread_create");
  while (g_stage.load() < 1) SleepMs(1);
  SleepMs(30);  // let it block
  if (fn == MaskedWaiter) {
    ShowRc(pthread_kill(g_target, SIGUSR1), "pthread_kill (blocked by the target)");
    SleepMs(30);
    Say("handler ran while blocked: %s", YesNo(g_handled.load() > 0));
    g_stage.store(3);
    while (g_stage.load() != 4) SleepMs(1);
    Say("handlers run when it unblocked: %ld", g_result.load());
  } else if (queue) {
    sigval v{};
    v.sival_int = 42;
    ShowRc(pthread_sigqueue(g_target, SIGUSR1, v), "pthread_sigqueue(42)");
  } else {
    ShowRc(pthread_kill(g_target, SIGUSR1), "pthread_kill");
  }
  Say("handler ran: %s", YesNo(WaitHandled(1)));
  Say("on the target thread: %s, si_code %s, value %d", YesNo(g_on_target.load()),
      Code(g_code.load()), g_value.load());
  if (fn == CondWaiter) {
    SleepMs(30);
    Say("cond wait still waiting: %s", YesNo(g_stage.load() == 1));
    pthread_mutex_lock(&g_mu);
    g_go = true;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
  }
  pthread_join(g_target, nullptr);
  if (fn == Sleeper) {
    Say("nanosleep -> %s%s", g_result.load() == 0 ? "0" : "-1 ",
        g_result.load() == 0 ? "" : ErrnoName(g_err.load()));
    Say("rem within the request: %s", YesNo(g_result.load() == 1));
  } else if (fn == CondWaiter) {
    Say("pthread_cond_wait -> %ld", g_result.load());
  }
}

}  // namespace

// SA_ONSTACK: a handler pthread_kill runs on the target thread's own sigaltstack, which
// sigaltstack reports as in use (SS_ONSTACK) from inside it; without SA_ONSTACK, on its stack.
// The target is parked in a receive meanwhile (SA_RESTART: it goes on receiving afterwards).
char g_alt[64 * 1024];
std::atomic<bool> g_on_alt{false};
std::atomic<bool> g_reports_onstack{false};
int g_alt_pair[2];
std::atomic<bool> g_alt_ready{false};

void OnAltSignal(int) {
  char here;
  g_on_alt.store(&here >= g_alt && &here < g_alt + sizeof g_alt);
  stack_t ss;
  g_reports_onstack.store(sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) != 0);
  g_handled.fetch_add(1);
}

void* AltReceiver(void*) {
  stack_t ss{};
  ss.ss_sp = g_alt;
  ss.ss_size = sizeof g_alt;
  Must(sigaltstack(&ss, nullptr), "sigaltstack");
  g_alt_ready.store(true);
  char c = 0;
  ssize_t n = recv(g_alt_pair[1], &c, 1, 0);
  Say("  receiver: recv returned %zd '%c' after the handler", n, n == 1 ? c : '?');
  ss.ss_flags = SS_DISABLE;  // the stack is ours: a runtime that frees a thread's own must not
  Must(sigaltstack(&ss, nullptr), "sigaltstack");
  return nullptr;
}

void OnItsSigaltstack(bool onstack) {
  Say("== pthread_kill, handler %s SA_ONSTACK, target parked in recv with a sigaltstack",
      onstack ? "with" : "without");
  struct sigaction sa {};
  sa.sa_handler = OnAltSignal;
  sa.sa_flags = SA_RESTART | (onstack ? SA_ONSTACK : 0);
  sigemptyset(&sa.sa_mask);
  Must(sigaction(SIGUSR2, &sa, nullptr), "sigaction");
  Must(socketpair(AF_UNIX, SOCK_STREAM, 0, g_alt_pair), "socketpair");
  g_handled.store(0);
  g_alt_ready.store(false);
  pthread_t t;
  pthread_create(&t, nullptr, AltReceiver, nullptr);
  while (!g_alt_ready.load()) usleep(1000);
  usleep(20000);  // parked in recv (the transcript is the same if it is not yet)
  pthread_kill(t, SIGUSR2);
  while (g_handled.load() == 0) usleep(1000);
  Say("  handler ran on the sigaltstack: %s; sigaltstack said SS_ONSTACK: %s",
      YesNo(g_on_alt.load()), YesNo(g_reports_onstack.load()));
  Must(send(g_alt_pair[0], "k", 1, 0) == 1 ? 0 : -1, "send");
  pthread_join(t, nullptr);
  close(g_alt_pair[0]);
  close(g_alt_pair[1]);
}

// A handler that leaves by siglongjmp to a sigsetjmp that saved the mask: the mask comes back,
// so the same signal is delivered again next time (the thread, computing, takes it three times).
sigjmp_buf g_back;
std::atomic<int> g_jumps{0};
std::atomic<bool> g_jump_ready{false};

void OnJumpSignal(int) { siglongjmp(g_back, 1); }

void* Jumper(void*) {
  for (;;) {
    if (sigsetjmp(g_back, 1) != 0) {
      g_jumps.fetch_add(1);
      g_jump_ready.store(false);
      if (g_jumps.load() == 3) break;
    }
    g_jump_ready.store(true);
    while (g_jump_ready.load(std::memory_order_relaxed)) {
      // computes until the signal jumps out of the loop
    }
  }
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  Say("  after 3 jumps the thread blocks SIGUSR2: %s", YesNo(sigismember(&cur, SIGUSR2)));
  return nullptr;
}

void JumpOutOfTheHandler() {
  Say("== pthread_kill, the handler leaves by siglongjmp (sigsetjmp saved the mask), 3 times");
  struct sigaction sa {};
  sa.sa_handler = OnJumpSignal;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(SIGUSR2, &sa, nullptr), "sigaction");
  pthread_t t;
  pthread_create(&t, nullptr, Jumper, nullptr);
  for (int i = 0; i < 3; ++i) {
    while (!g_jump_ready.load()) usleep(1000);
    usleep(20000);
    int before = g_jumps.load();
    pthread_kill(t, SIGUSR2);
    while (g_jumps.load() == before) usleep(1000);
  }
  pthread_join(t, nullptr);
  Say("  jumps: %d", g_jumps.load());
}

int main() {
  Run("nanosleep", Sleeper, false, false);
  Run("nanosleep", Sleeper, true, false);
  Run("nanosleep", Sleeper, true, true);
  Run("pthread_cond_wait", CondWaiter, false, false);
  Run("pthread_cond_wait", CondWaiter, true, true);
  Run("blocked by the target's own mask", MaskedWaiter, true, false);
  OnItsSigaltstack(true);
  OnItsSigaltstack(false);
  JumpOutOfTheHandler();
  Say("== main's mask is unchanged by the threads'");
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, nullptr, &cur);
  Say("main blocks SIGUSR1: %s", YesNo(sigismember(&cur, SIGUSR1)));
  return 0;
}
