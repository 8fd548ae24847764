// A thread that computes is interrupted by the signal sent to it, as by the kernel: pthread_kill
// of a thread spinning on a flag runs the handler on it at once (the handler ends the spin), a
// thread held in a raw read system call gets its handler and the call fails with EINTR without
// SA_RESTART or goes on reading with it, and pthread_cancel of a spinning thread with
// asynchronous cancellation unwinds it (its cleanup handler and destructors run) so that
// pthread_join returns PTHREAD_CANCELED. Natively this is the kernel's doing; in fibers mode the
// thread is a fiber that never parks, which gonet must interrupt itself.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "transcript.h"

using namespace conf;

namespace {

std::atomic<bool> g_spinning{false};
std::atomic<bool> g_stop{false};
std::atomic<bool> g_on_target{false};
std::atomic<int> g_handled{0};
pthread_t g_target;

void OnSignal(int) {
  g_on_target.store(pthread_equal(pthread_self(), g_target) != 0);
  g_stop.store(true);
  g_handled.fetch_add(1);
}

void Install(int sig, bool restart) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(sig, &sa, nullptr), "sigaction");
}

// Computes (no system call, no library call) until the handler stops it.
void* Spinner(void*) {
  g_spinning.store(true);
  unsigned long n = 0;
  while (!g_stop.load(std::memory_order_relaxed)) ++n;
  return reinterpret_cast<void*>(n != 0);
}

void SpinnerGetsItsHandler() {
  Say("== pthread_kill of a thread that computes");
  Install(SIGUSR1, true);
  g_stop.store(false);
  g_spinning.store(false);
  pthread_create(&g_target, nullptr, Spinner, nullptr);
  while (!g_spinning.load()) usleep(1000);
  usleep(20000);
  pthread_kill(g_target, SIGUSR1);
  void* counted = nullptr;
  pthread_join(g_target, &counted);
  Say("  handler ran %d time(s), on the target: %s; the spin ended: %s", g_handled.load(),
      YesNo(g_on_target.load()), YesNo(counted != nullptr));
}

int g_pipe[2];
std::atomic<bool> g_reading{false};

// A raw read system call: nothing gonet can see or park.
void* RawReader(void*) {
  char c = 0;
  g_reading.store(true);
  long n = syscall(SYS_read, g_pipe[0], &c, 1);
  int err = n < 0 ? errno : 0;
  Say("  raw read returned %ld%s%s", n, n < 0 ? " " : "", n < 0 ? ErrnoName(err) : "");
  return nullptr;
}

void RawReadIsInterrupted(bool restart) {
  Say("== pthread_kill of a thread in a raw read, handler %s SA_RESTART",
      restart ? "with" : "without");
  Install(SIGUSR2, restart);
  Must(pipe(g_pipe), "pipe");
  g_handled.store(0);
  g_reading.store(false);
  pthread_create(&g_target, nullptr, RawReader, nullptr);
  while (!g_reading.load()) usleep(1000);
  usleep(50000);  // in the read (the transcript is the same if it is not yet: EINTR or data)
  pthread_kill(g_target, SIGUSR2);
  while (g_handled.load() == 0) usleep(1000);
  Say("  handler ran on the target: %s", YesNo(g_on_target.load()));
  if (restart) Must(write(g_pipe[1], "r", 1), "write");
  pthread_join(g_target, nullptr);
  close(g_pipe[0]);
  close(g_pipe[1]);
}

std::atomic<bool> g_cleanup_ran{false};
std::atomic<bool> g_destructor_ran{false};

struct SaysGoodbye {
  ~SaysGoodbye() { g_destructor_ran.store(true); }
};

// No object with a destructor lives here: the unwind starts at any instruction of this loop, and
// C++ tables describe cleanups only at calls (the callers' frames have theirs at this call).
__attribute__((noinline)) void SpinUntilCancelled() {
  int old = 0;
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
  g_spinning.store(true);
  while (g_spinning.load(std::memory_order_relaxed)) {
  }
}

void* AsyncCancellable(void*) {
  SaysGoodbye goodbye;
  pthread_cleanup_push([](void*) { g_cleanup_ran.store(true); }, nullptr);
  SpinUntilCancelled();
  pthread_cleanup_pop(0);
  return nullptr;
}

void AsyncCancelOfASpinner() {
  Say("== pthread_cancel of a thread that computes, asynchronous cancellation");
  g_spinning.store(false);
  pthread_t t;
  pthread_create(&t, nullptr, AsyncCancellable, nullptr);
  while (!g_spinning.load()) usleep(1000);
  usleep(20000);
  pthread_cancel(t);
  void* ret = nullptr;
  pthread_join(t, &ret);
  Say("  join returned PTHREAD_CANCELED: %s; cleanup handler ran: %s; destructor ran: %s",
      YesNo(ret == PTHREAD_CANCELED), YesNo(g_cleanup_ran.load()),
      YesNo(g_destructor_ran.load()));
}

}  // namespace

int main() {
  SpinnerGetsItsHandler();
  RawReadIsInterrupted(false);
  RawReadIsInterrupted(true);
  AsyncCancelOfASpinner();
  return 0;
}
