// A process-directed signal (kill(getpid(), sig)) goes to a thread that does not block it, and
// that thread's blocking call sees it exactly as if the signal had named the thread: with every
// other thread blocking the signal, the handler runs once, on that thread (pthread_self in the
// handler, si_code SI_USER, si_pid ours), and its parked recv fails with EINTR without
// SA_RESTART, or is restarted with SA_RESTART and returns the data sent afterwards; of one
// thread asleep with the signal unblocked and three parked in recv blocking it, the sleeper alone
// takes it (nanosleep -1 EINTR before its timeout) and the receivers stay parked; a signal every
// thread blocks stays pending for the process (sigpending in a thread shows it) and its handler
// runs on the first thread that unblocks it, before that pthread_sigmask returns.
//
// Never hangs when the signal goes astray (e.g. to a thread the program does not own): the main
// thread waits a bounded time for the receiver to report, then sends it one byte, so a recv the
// signal did not reach returns 1 instead of -1 EINTR and the transcript shows it.
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

// How long the main thread waits for what the signal should cause before unsticking the scenario:
// natively it happens within microseconds, so running out means the signal went elsewhere.
constexpr int kBoundMs = 2000;

std::atomic<int> g_handled{0};
std::atomic<bool> g_on_target{false};
std::atomic<int> g_code{0};
std::atomic<bool> g_from_us{false};
std::atomic<pthread_t> g_target{};  // set by the thread expected to take the signal
thread_local int t_ran = 0;         // handlers run on this thread

void OnSignal(int, siginfo_t* si, void*) {
  ++t_ran;
  g_on_target.store(pthread_equal(pthread_self(), g_target.load()) != 0);
  g_code.store(si->si_code);
  g_from_us.store(si->si_pid == getpid());
  g_handled.fetch_add(1);
}

void Install(int sig, bool restart) {
  struct sigaction sa {};
  sa.sa_sigaction = OnSignal;
  sa.sa_flags = SA_SIGINFO | (restart ? SA_RESTART : 0);
  sigemptyset(&sa.sa_mask);
  Must(sigaction(sig, &sa, nullptr), "sigaction");
  g_handled.store(0);
  g_on_target.store(false);
  g_code.store(0);
  g_from_us.store(false);
}

void Mask(int how, int sig) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  Must(-pthread_sigmask(how, &s, nullptr), "pthread_sigmask");
}

const char* Code(int c) { return c == SI_USER ? "SI_USER" : c == SI_TKILL ? "SI_TKILL" : "?"; }

// Waits until done() holds, at most kBoundMs; says whether it did.
template <typename Pred>
bool WaitBounded(Pred done) {
  for (int i = 0; i < kBoundMs && !done(); ++i) SleepMs(1);
  return done();
}

// What one parked thread saw.
struct Outcome {
  Announcer parked;
  std::atomic<bool> done{false};
  long r = 0;
  int err = 0;
  int ran = 0;  // handlers run on this thread during its call
};

// Receives one byte on fd; with `accept_sig` the thread unblocks sig for the call (and blocks it
// again after: stages stay independent whatever thread ran before) and is the expected target.
void Receive(Outcome* o, int fd, int sig, bool accept_sig) {
  if (accept_sig) {
    g_target.store(pthread_self());
    Mask(SIG_UNBLOCK, sig);
  }
  char c;
  int before = t_ran;
  o->parked.Announce();
  o->r = recv(fd, &c, 1, 0);
  o->err = errno;
  o->ran = t_ran - before;
  if (accept_sig) Mask(SIG_BLOCK, sig);
  o->done.store(true);
}

void Report(const char* what, const Outcome& o) {
  Say("%s -> %ld%s%s, handlers run on it during the call: %d", what, o.r, o.r < 0 ? " " : "",
      o.r < 0 ? ErrnoName(o.err) : "", o.ran);
}

void ReportHandler() {
  Say("handler runs: %d, on the thread that accepts the signal: %s, si_code %s, si_pid ours: %s",
      g_handled.load(), YesNo(g_on_target.load()), Code(g_code.load()), YesNo(g_from_us.load()));
}

// Stages 1 and 2: one thread parked in recv accepts SIGUSR1, the main thread blocks it.
void RecvInterrupted(bool restart) {
  Say("== recv %s SA_RESTART, only the receiving thread accepts SIGUSR1, kill to the process",
      restart ? "with" : "without");
  Install(SIGUSR1, restart);
  Mask(SIG_BLOCK, SIGUSR1);  // the receiver inherits it and unblocks it itself
  Pair p = TcpPair();
  Outcome o;
  std::thread t(Receive, &o, p.server, SIGUSR1, true);
  o.parked.WaitParked();
  Show(kill(getpid(), SIGUSR1), "kill(getpid(), SIGUSR1)");
  if (restart) {
    WaitBounded([] { return g_handled.load() > 0; });
    SleepMs(50);  // a restarted recv stays parked; one the handler ended would be done by now
    Say("recv still blocked after the handler ran: %s", YesNo(!o.done.load()));
    SendStr(p.client, "x");
  } else if (!WaitBounded([&] { return o.done.load(); })) {
    SendStr(p.client, "x");  // the signal did not end the recv: the byte does
  }
  t.join();
  Report("recv", o);
  ReportHandler();
  CloseBoth(p);
}

// Stage 3: three receivers block SIGUSR2, one sleeper accepts it.
void OneOfSeveralAccepts() {
  Say("== three threads parked in recv block SIGUSR2, one asleep accepts it, kill to the process");
  Install(SIGUSR2, false);
  Mask(SIG_BLOCK, SIGUSR2);  // inherited by all four
  constexpr int kReceivers = 3;
  Pair pairs[kReceivers];
  Outcome receivers[kReceivers];
  std::thread threads[kReceivers];
  for (int i = 0; i < kReceivers; ++i) {
    pairs[i] = TcpPair();
    threads[i] = std::thread(Receive, &receivers[i], pairs[i].server, SIGUSR2, false);
  }
  constexpr int kSleepMs = 5000;
  Outcome sleeper;
  const char* verdict = "";
  std::thread a([&] {
    g_target.store(pthread_self());
    Mask(SIG_UNBLOCK, SIGUSR2);
    timespec req{kSleepMs / 1000, 0};
    int before = t_ran;
    sleeper.parked.Announce();
    Stopwatch sw;
    sleeper.r = nanosleep(&req, nullptr);
    sleeper.err = errno;
    verdict = sw.Before(kSleepMs);
    sleeper.ran = t_ran - before;
    Mask(SIG_BLOCK, SIGUSR2);
    sleeper.done.store(true);
  });
  for (Outcome& o : receivers) o.parked.WaitParked(0);
  sleeper.parked.WaitParked();
  Show(kill(getpid(), SIGUSR2), "kill(getpid(), SIGUSR2)");
  a.join();  // its nanosleep ends by itself at the latest
  Report("nanosleep", sleeper);
  Say("nanosleep returned %s", verdict);
  SleepMs(50);  // a receiver the signal ended would be done by now
  int still = 0;
  for (Outcome& o : receivers) still += o.done.load() ? 0 : 1;
  Say("receivers still blocked: %d of %d", still, kReceivers);
  ReportHandler();
  for (int i = 0; i < kReceivers; ++i) {
    SendStr(pairs[i].client, "x");
    threads[i].join();
    Report("receiver's recv", receivers[i]);
    CloseBoth(pairs[i]);
  }
}

// Stage 4: every thread blocks SIGHUP; it stays pending until the receiver unblocks it.
void PendingUntilOneUnblocks() {
  Say("== every thread blocks SIGHUP, kill to the process, then one thread unblocks it");
  Install(SIGHUP, false);
  Mask(SIG_BLOCK, SIGHUP);
  Pair p = TcpPair();
  Announcer parked;
  std::thread b([&] {
    g_target.store(pthread_self());
    char c;
    parked.Announce();
    Show(recv(p.server, &c, 1, 0), "recv (woken by a byte)");
    sigset_t pending;
    sigemptyset(&pending);
    Show(sigpending(&pending), "sigpending");
    Say("SIGHUP pending: %s", YesNo(sigismember(&pending, SIGHUP) == 1));
    int before = t_ran;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGHUP);
    ShowRc(pthread_sigmask(SIG_UNBLOCK, &s, nullptr), "pthread_sigmask(SIG_UNBLOCK, SIGHUP)");
    Say("handlers run on this thread across the call: %d", t_ran - before);
    sigemptyset(&pending);
    Show(sigpending(&pending), "sigpending");
    Say("SIGHUP pending: %s", YesNo(sigismember(&pending, SIGHUP) == 1));
  });
  parked.WaitParked();
  Show(kill(getpid(), SIGHUP), "kill(getpid(), SIGHUP)");
  SleepMs(100);
  Say("handler ran while every thread blocked it: %s", YesNo(g_handled.load() > 0));
  SendStr(p.client, "x");
  b.join();
  ReportHandler();
  CloseBoth(p);
}

}  // namespace

int main() {
  alarm(60);  // a wait that never ends kills the run instead of hanging it
  RecvInterrupted(false);
  RecvInterrupted(true);
  OneOfSeveralAccepts();
  PendingUntilOneUnblocks();
  return 0;
}
