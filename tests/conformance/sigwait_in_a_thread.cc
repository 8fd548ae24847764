// sigwait, sigwaitinfo and sigtimedwait on a thread that is not the main one, with the signals
// blocked in every thread (the usual signal-handling-thread design): a signal sent to that thread
// (pthread_kill, pthread_sigqueue with its value) and one sent to the process (kill) are both
// taken by the waiting thread; a timed wait with nothing sent says EAGAIN; no handler runs.
//
// The waiting thread must not hold anything the others need. In fibers mode with one worker (the
// runner sets GONET_WORKERS=1 for this scenario, issue 18) every pthread is a fiber on one OS
// thread, so the last stages have the signal sent by another pthread, and only after that one has
// bounced a byte through pipes with a third pthread: a sigwait that held the worker would leave
// the sender unable to run (until the sysmon's handoff), and a pthread_kill of a fiber whose wait
// sits in the kernel would never reach it.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "ping_pong.h"
#include "transcript.h"

using namespace conf;

namespace {

std::atomic<int> g_handled{0};
void OnSignal(int) { g_handled.fetch_add(1); }

std::atomic<bool> g_waiting{false};
std::atomic<int> g_got{0};
std::atomic<int> g_code{0};
std::atomic<int> g_value{0};

sigset_t Set(int sig) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  return s;
}

void* Sigwait(void*) {
  sigset_t s = Set(SIGUSR1);
  int sig = 0;
  g_waiting = true;
  int rc = sigwait(&s, &sig);
  g_got = rc == 0 ? sig : -rc;
  return nullptr;
}

void* Sigwaitinfo(void* arg) {
  sigset_t s = Set(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
  siginfo_t si{};
  g_waiting = true;
  int r = sigwaitinfo(&s, &si);
  g_got = r;
  g_code = si.si_code;
  g_value = si.si_code == SI_QUEUE ? si.si_value.sival_int : 0;
  return nullptr;
}

const char* Code(int c) {
  return c == SI_USER ? "SI_USER" : c == SI_TKILL ? "SI_TKILL" : c == SI_QUEUE ? "SI_QUEUE" : "?";
}

pthread_t Start(void* (*fn)(void*), void* arg) {
  g_waiting = false;
  g_got = 0;
  pthread_t t;
  Must(-pthread_create(&t, nullptr, fn, arg), "pthread_create");
  while (!g_waiting) SleepMs(1);
  SleepMs(30);  // let it block in the wait
  return t;
}

}  // namespace

int main() {
  alarm(60);  // a signal that never reaches its waiter ends the run instead of hanging it
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
  sigset_t both = Set(SIGUSR1);
  sigaddset(&both, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &both, nullptr);  // inherited by every thread made after this

  Say("== sigwait, pthread_kill to the waiting thread");
  pthread_t t = Start(Sigwait, nullptr);
  ShowRc(pthread_kill(t, SIGUSR1), "pthread_kill(SIGUSR1)");
  pthread_join(t, nullptr);
  Say("sigwait took SIGUSR1: %s", YesNo(g_got == SIGUSR1));

  Say("== sigwaitinfo, pthread_sigqueue to the waiting thread");
  t = Start(Sigwaitinfo, reinterpret_cast<void*>(SIGUSR1));
  sigval v{};
  v.sival_int = 7;
  ShowRc(pthread_sigqueue(t, SIGUSR1, v), "pthread_sigqueue(SIGUSR1, 7)");
  pthread_join(t, nullptr);
  Say("sigwaitinfo -> %s, %s, value %d", g_got == SIGUSR1 ? "SIGUSR1" : "?", Code(g_code),
      g_value.load());

  Say("== sigwaitinfo, kill to the process");
  t = Start(Sigwaitinfo, reinterpret_cast<void*>(SIGUSR2));
  Show(kill(getpid(), SIGUSR2), "kill(getpid(), SIGUSR2)");
  pthread_join(t, nullptr);
  Say("sigwaitinfo -> %s, %s", g_got == SIGUSR2 ? "SIGUSR2" : "?", Code(g_code));

  Say("== sigtimedwait with nothing sent");
  std::atomic<long> r{0};
  std::atomic<int> err{0};
  pthread_t w;
  pthread_create(
      &w, nullptr,
      [](void* p) -> void* {
        auto* out = static_cast<std::pair<std::atomic<long>*, std::atomic<int>*>*>(p);
        sigset_t s = Set(SIGUSR1);
        timespec ts{0, 50 * 1000 * 1000};
        *out->first = sigtimedwait(&s, nullptr, &ts);
        *out->second = errno;
        return nullptr;
      },
      new std::pair<std::atomic<long>*, std::atomic<int>*>(&r, &err));
  pthread_join(w, nullptr);
  Say("sigtimedwait(50 ms) -> %ld %s", r.load(), r.load() < 0 ? ErrnoName(err) : "");

  // The sender is a pthread that first works with a third one while the waiter sits in its wait.
  Say("== sigwait, another thread works with a third, then pthread_kill to the waiting thread");
  t = Start(Sigwait, nullptr);
  std::thread sender([t] {
    Say("other threads ran while it waited: ping-pong checksum %08x", PingPong(50));
    ShowRc(pthread_kill(t, SIGUSR1), "pthread_kill(SIGUSR1) from another thread");
  });
  sender.join();
  pthread_join(t, nullptr);
  Say("sigwait took SIGUSR1: %s", YesNo(g_got == SIGUSR1));

  Say("== sigtimedwait(10 s), another thread works with a third, then pthread_sigqueue to it");
  std::atomic<int> timed_got{0}, timed_value{0};
  std::atomic<bool> timed_waiting{false};
  const char* timed_verdict = "";
  std::thread waiter([&] {
    sigset_t s = Set(SIGUSR1);
    siginfo_t si{};
    timespec ts{10, 0};
    timed_waiting = true;
    Stopwatch sw;
    int r = sigtimedwait(&s, &si, &ts);
    timed_got = r;
    timed_value = r > 0 && si.si_code == SI_QUEUE ? si.si_value.sival_int : 0;
    timed_verdict = sw.Before(10000);
  });
  while (!timed_waiting) SleepMs(1);
  SleepMs(30);
  std::thread queuer([&] {
    Say("other threads ran while it waited: ping-pong checksum %08x", PingPong(50));
    sigval v2{};
    v2.sival_int = 9;
    ShowRc(pthread_sigqueue(waiter.native_handle(), SIGUSR1, v2),
           "pthread_sigqueue(SIGUSR1, 9) from another thread");
  });
  queuer.join();
  waiter.join();
  Say("sigtimedwait -> %s, value %d, %s", timed_got == SIGUSR1 ? "SIGUSR1" : "?",
      timed_value.load(), timed_verdict);

  Say("== sigwaitinfo, another thread works with a third, then kill to the process");
  t = Start(Sigwaitinfo, reinterpret_cast<void*>(SIGUSR2));
  std::thread killer([] {
    Say("other threads ran while it waited: ping-pong checksum %08x", PingPong(50));
    Show(kill(getpid(), SIGUSR2), "kill(getpid(), SIGUSR2) from another thread");
  });
  killer.join();
  pthread_join(t, nullptr);
  Say("sigwaitinfo -> %s, %s", g_got == SIGUSR2 ? "SIGUSR2" : "?", Code(g_code));

  Say("a handler ran: %s", YesNo(g_handled.load() > 0));
  return 0;
}
