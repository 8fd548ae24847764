// A condition variable wakes its waiters whatever kind of mutex they wait with: robust,
// priority-inheritance, process-shared (with a process-private or a process-shared condvar), and
// across processes. Issue 13: fibers mode sent a wait with such a mutex to glibc's
// pthread_cond_wait but every signal and broadcast to gonet's own protocol, so the waiter was
// never woken (a timed wait returned ETIMEDOUT at its deadline, an untimed one hung) and glibc's
// condvar state was corrupted. One condvar must be driven by one protocol.
//
// Waiters and wakers are pthreads (fibers in fibers mode) and the main thread (an OS thread
// there), in each direction; waits are untimed, timed on the condvar's clock, and clockwaits on
// either clock. Each wait's deadline is far beyond its wake, and each wake follows its waiters'
// announcement, which only makes the interesting interleaving (waiter already asleep) likely: no
// result depends on timing. No thread sleeps or prints while it holds a robust or PI mutex, whose
// owner is an OS thread's id.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <new>
#include <thread>
#include <vector>

#include "deadline.h"
#include "transcript.h"

using namespace conf;

namespace {

constexpr int kWaiters = 8;
constexpr int kFarSeconds = 20;

enum class Kind { kRobust, kPrioInherit, kSharedMutex, kSharedBoth };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kRobust:
      return "robust mutex";
    case Kind::kPrioInherit:
      return "PI mutex";
    case Kind::kSharedMutex:
      return "pshared mutex";
    case Kind::kSharedBoth:
      return "pshared mutex and condvar";
  }
  return "?";
}

// A mutex and a condvar of the given kind, with the predicate state they guard.
struct Sync {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool go = false;
  int tokens = 0, consumed = 0, waiting = 0, timed_out = 0;
};

void Init(Sync* s, Kind k, bool shared_cond = false) {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  if (k == Kind::kRobust) Must(-pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST), "robust");
  if (k == Kind::kPrioInherit) {
    Must(-pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT), "setprotocol");
  }
  if (k == Kind::kSharedMutex || k == Kind::kSharedBoth) {
    Must(-pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED), "mutex setpshared");
  }
  Must(-pthread_mutex_init(&s->mu, &ma), "pthread_mutex_init");
  pthread_mutexattr_destroy(&ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  if (k == Kind::kSharedBoth || shared_cond) {
    Must(-pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED), "cond setpshared");
  }
  Must(-pthread_cond_init(&s->cv, &ca), "pthread_cond_init");
  pthread_condattr_destroy(&ca);
}

// One wait of the i-th flavour: untimed, timedwait (the condvar's clock, REALTIME here), or a
// clockwait on either clock. Returns its result.
int WaitOnce(Sync* s, int i) {
  timespec real = After(CLOCK_REALTIME, kFarSeconds), mono = After(CLOCK_MONOTONIC, kFarSeconds);
  switch (i % 4) {
    case 0:
      return pthread_cond_wait(&s->cv, &s->mu);
    case 1:
      return pthread_cond_timedwait(&s->cv, &s->mu, &real);
    case 2:
      return pthread_cond_clockwait(&s->cv, &s->mu, CLOCK_MONOTONIC, &mono);
    default:
      return pthread_cond_clockwait(&s->cv, &s->mu, CLOCK_REALTIME, &real);
  }
}

// Waits (the i-th flavour) until `go`; the first error other than a spurious return ends it.
int WaitForGo(Sync* s, int i) {
  int r = 0;
  while (!s->go && r == 0) r = WaitOnce(s, i);
  return r;
}

// Sleeps until `waiting` reaches n (read under the mutex), then a little more.
void SettleWaiting(Sync* s, int n) {
  for (;;) {
    pthread_mutex_lock(&s->mu);
    bool all = s->waiting >= n;
    pthread_mutex_unlock(&s->mu);
    if (all) break;
    SleepMs(1);
  }
  SleepMs(50);
}

// Sets `go` under the mutex and signals or broadcasts.
void Go(Sync* s, bool broadcast) {
  pthread_mutex_lock(&s->mu);
  s->go = true;
  int r = broadcast ? pthread_cond_broadcast(&s->cv) : pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (r != 0) Say("SETUP FAILED: %s -> %s", broadcast ? "broadcast" : "signal", ErrnoName(r));
}

// One waiter, one waker, for each flavour of wait: a pthread waits and the main thread wakes
// (signal, then broadcast), the main thread waits and a pthread wakes, a pthread waits and
// another pthread wakes.
void OneWaiterEachWay(Kind k) {
  for (bool broadcast : {false, true}) {
    for (int i = 0; i < 4; ++i) {
      Sync s;
      Init(&s, k);
      int r = -1;
      std::thread waiter([&] {
        pthread_mutex_lock(&s.mu);
        ++s.waiting;
        r = WaitForGo(&s, i);
        pthread_mutex_unlock(&s.mu);
      });
      SettleWaiting(&s, 1);
      Go(&s, broadcast);
      waiter.join();
      ShowRc(r, "%s: a thread waits (flavour %d), main %s", KindName(k), i,
             broadcast ? "broadcasts" : "signals");
      ShowRc(pthread_mutex_destroy(&s.mu), "%s: destroy the mutex", KindName(k));
      ShowRc(pthread_cond_destroy(&s.cv), "%s: destroy the condvar", KindName(k));
    }
  }
  for (int i = 0; i < 4; ++i) {
    Sync s;
    Init(&s, k);
    std::thread waker([&] {
      SettleWaiting(&s, 1);
      Go(&s, i % 2 == 1);
    });
    pthread_mutex_lock(&s.mu);
    ++s.waiting;
    int r = WaitForGo(&s, i);
    pthread_mutex_unlock(&s.mu);
    waker.join();
    ShowRc(r, "%s: main waits (flavour %d), a thread %s", KindName(k), i,
           i % 2 ? "broadcasts" : "signals");
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
  }
  for (int i = 0; i < 4; ++i) {
    Sync s;
    Init(&s, k);
    int r = -1;
    std::thread waiter([&] {
      pthread_mutex_lock(&s.mu);
      ++s.waiting;
      r = WaitForGo(&s, i);
      pthread_mutex_unlock(&s.mu);
    });
    std::thread waker([&] {
      SettleWaiting(&s, 1);
      Go(&s, i % 2 == 1);
    });
    waiter.join();
    waker.join();
    ShowRc(r, "%s: a thread waits (flavour %d), another thread %s", KindName(k), i,
           i % 2 ? "broadcasts" : "signals");
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
  }
}

// kWaiters pthreads and the main thread's wakes: one broadcast releases all, then one signal per
// token, each token consumed once.
void ManyWaitersBroadcastThenSignals(Kind k) {
  Sync s;
  Init(&s, k);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      pthread_mutex_lock(&s.mu);
      ++s.waiting;
      int r = WaitForGo(&s, i);
      while (r == 0 && s.tokens == 0) r = WaitOnce(&s, i + 1);
      if (r == 0) {
        --s.tokens;
        ++s.consumed;
      } else {
        ++s.timed_out;
      }
      pthread_mutex_unlock(&s.mu);
    });
  }
  SettleWaiting(&s, kWaiters);
  Go(&s, true);
  for (int i = 0; i < kWaiters; ++i) {
    pthread_mutex_lock(&s.mu);
    ++s.tokens;
    int r = pthread_cond_signal(&s.cv);
    pthread_mutex_unlock(&s.mu);
    if (r != 0) Say("SETUP FAILED: signal -> %s", ErrnoName(r));
  }
  for (std::thread& t : threads) t.join();
  Say("%s: %d waiters, broadcast then %d signals: consumed %d, failed %d", KindName(k), kWaiters,
      kWaiters, s.consumed, s.timed_out);
  ShowRc(pthread_mutex_destroy(&s.mu), "%s: destroy the mutex", KindName(k));
  ShowRc(pthread_cond_destroy(&s.cv), "%s: destroy the condvar", KindName(k));
}

// A timed wait nobody signals returns ETIMEDOUT with the mutex held again (another thread's
// trylock says EBUSY); then a signal with nobody waiting is lost, as it must be.
void TimeoutsKeepTheMutex(Kind k) {
  Sync s;
  Init(&s, k);
  std::thread th([&] {
    pthread_mutex_lock(&s.mu);
    timespec t = After(CLOCK_REALTIME, 0, 30);
    int r = pthread_cond_timedwait(&s.cv, &s.mu, &t);
    int busy = -1;
    std::thread other([&] { busy = pthread_mutex_trylock(&s.mu); });
    other.join();
    pthread_mutex_unlock(&s.mu);
    ShowRc(r, "%s: timedwait(+30ms), no signal", KindName(k));
    ShowRc(busy, "%s: trylock from another thread after the timeout", KindName(k));
    pthread_mutex_lock(&s.mu);
    t = After(CLOCK_MONOTONIC, 0, 30);
    r = pthread_cond_clockwait(&s.cv, &s.mu, CLOCK_MONOTONIC, &t);
    pthread_mutex_unlock(&s.mu);
    ShowRc(r, "%s: clockwait(MONOTONIC, +30ms), no signal", KindName(k));
  });
  th.join();
  ShowRc(pthread_cond_signal(&s.cv), "%s: signal with nobody waiting", KindName(k));
  ShowRc(pthread_cond_broadcast(&s.cv), "%s: broadcast with nobody waiting", KindName(k));
  std::thread late([&] {
    pthread_mutex_lock(&s.mu);
    timespec t = After(CLOCK_REALTIME, 0, 30);
    int r = pthread_cond_timedwait(&s.cv, &s.mu, &t);
    pthread_mutex_unlock(&s.mu);
    ShowRc(r, "%s: timedwait(+30ms) after the earlier wakes", KindName(k));
  });
  late.join();
  ShowRc(pthread_mutex_destroy(&s.mu), "%s: destroy the mutex", KindName(k));
  ShowRc(pthread_cond_destroy(&s.cv), "%s: destroy the condvar", KindName(k));
}

// A process-shared mutex and condvar in shared memory: the child waits and the parent wakes,
// then the parent waits and the child wakes.
void AcrossProcesses() {
  void* mem =
      mmap(nullptr, sizeof(Sync), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) Fail("mmap");
  for (bool child_waits : {true, false}) {
    for (bool broadcast : {false, true}) {
      Sync* s = new (mem) Sync;
      Init(s, Kind::kSharedBoth);
      pid_t pid = fork();
      if (pid < 0) Fail("fork");
      bool waits = (pid == 0) == child_waits;
      int r = 0;
      if (waits) {
        pthread_mutex_lock(&s->mu);
        ++s->waiting;
        r = WaitForGo(s, broadcast ? 1 : 2);
        pthread_mutex_unlock(&s->mu);
      } else {
        SettleWaiting(s, 1);
        Go(s, broadcast);
      }
      if (pid == 0) _exit(r);
      int status = 0;
      if (waitpid(pid, &status, 0) != pid) Fail("waitpid");
      if (!WIFEXITED(status)) Fail("child did not exit");
      if (child_waits) r = WEXITSTATUS(status);  // else the parent's own wait
      ShowRc(r, "pshared mutex and condvar: the %s waits, the %s %s",
             child_waits ? "child" : "parent", child_waits ? "parent" : "child",
             broadcast ? "broadcasts" : "signals");
      pthread_mutex_destroy(&s->mu);
      pthread_cond_destroy(&s->cv);
    }
  }
  munmap(mem, sizeof(Sync));
}

}  // namespace

int main() {
  alarm(240);  // a lost wake-up of an untimed wait ends the run instead of hanging it
  for (Kind k : {Kind::kRobust, Kind::kPrioInherit, Kind::kSharedMutex, Kind::kSharedBoth}) {
    OneWaiterEachWay(k);
    ManyWaitersBroadcastThenSignals(k);
    TimeoutsKeepTheMutex(k);
  }
  AcrossProcesses();
  return 0;
}
