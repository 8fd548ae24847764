// Every wait on a semaphore, mutex, condition variable or rwlock is woken by the matching post,
// unlock, signal or broadcast, whoever waits and whoever wakes: a pthread (a fiber in fibers
// mode), the main thread (an OS thread in fibers mode), or glibc's own code reached behind
// gonet's back (the libc.so.6 handle's symbol, as a glibc-internal caller would run it). Issue 13:
// Python 3.11's timed lock waits (sem_clockwait) slept inside glibc, gonet's sem_post woke only
// its own table, and every such wait returned at its deadline with ETIMEDOUT.
//
// No wait's result depends on timing: each timed wait has a deadline far beyond the wake (a
// deadline-woken wait shows up as ETIMEDOUT, or as a token left over), and each wake is made
// after its waiters have announced themselves, which only makes the interesting interleaving
// (waiter already asleep) likely.
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>

#include <atomic>
#include <thread>
#include <vector>

#include "deadline.h"
#include "transcript.h"

using namespace conf;

namespace {

constexpr int kMany = 200;
constexpr int kFarSeconds = 60;

// glibc's own definition of name, not the first one in the lookup order (gonet's, preloaded).
template <typename Fn>
Fn GlibcOwn(const char* name) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (libc == nullptr) Fail("dlopen libc.so.6");
  auto fn = reinterpret_cast<Fn>(dlsym(libc, name));
  if (fn == nullptr) Fail(name);
  return fn;
}

// Lets the announced waiters go to sleep before the wake (likely, not required).
void Settle(const std::atomic<int>& announced, int n) {
  while (announced.load() < n) SleepMs(1);
  SleepMs(50);
}

const char* ClockName(clockid_t c) { return c == CLOCK_MONOTONIC ? "MONOTONIC" : "REALTIME"; }

// --- semaphores ----------------------------------------------------------------------------

// kMany pthreads in timed waits (each entry and clock in turn), the main thread posts kMany
// times: every wait returns 0 and no token is left.
void ManySemWaitersEachWokenByAPost() {
  sem_t s;
  Must(sem_init(&s, 0, 0), "sem_init");
  std::atomic<int> announced{0}, woken{0}, timed_out{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&, i] {
      timespec mono = After(CLOCK_MONOTONIC, kFarSeconds),
               real = After(CLOCK_REALTIME, kFarSeconds);
      announced.fetch_add(1);
      int r;
      switch (i % 4) {
        case 0:
          r = sem_wait(&s);
          break;
        case 1:
          r = sem_timedwait(&s, &real);
          break;
        case 2:
          r = sem_clockwait(&s, CLOCK_MONOTONIC, &mono);
          break;
        default:
          r = sem_clockwait(&s, CLOCK_REALTIME, &real);
          break;
      }
      (r == 0 ? woken : timed_out).fetch_add(1);
    });
  }
  Settle(announced, kMany);
  for (int i = 0; i < kMany; ++i) Must(sem_post(&s), "sem_post");
  for (std::thread& t : threads) t.join();
  int left = -1;
  sem_getvalue(&s, &left);
  Say("sem: %d waiters, %d posts: woken %d, timed out %d, tokens left %d", kMany, kMany,
      woken.load(), timed_out.load(), left);
  sem_destroy(&s);
}

// A pthread waiting in glibc's own sem_clockwait (a caller gonet cannot see) is woken by the
// program's sem_post; the main thread waiting in sem_clockwait is woken by a pthread's post and
// by glibc's own sem_post.
void SemWaitersInGlibcAndOnTheMainThread() {
  using ClockWait = int (*)(sem_t*, clockid_t, const timespec*);
  using Post = int (*)(sem_t*);
  static ClockWait glibc_clockwait = GlibcOwn<ClockWait>("sem_clockwait");
  static Post glibc_post = GlibcOwn<Post>("sem_post");
  sem_t s;
  Must(sem_init(&s, 0, 0), "sem_init");
  std::atomic<int> announced{0};
  std::thread waiter([&] {
    timespec t = After(CLOCK_MONOTONIC, kFarSeconds);
    announced.fetch_add(1);
    ShowOk(glibc_clockwait(&s, CLOCK_MONOTONIC, &t), "sem: glibc's sem_clockwait, program's post");
  });
  Settle(announced, 1);
  Must(sem_post(&s), "sem_post");
  waiter.join();

  std::thread poster([&] {
    SleepMs(50);
    Must(sem_post(&s), "sem_post");
  });
  timespec t = After(CLOCK_MONOTONIC, kFarSeconds);
  ShowOk(sem_clockwait(&s, CLOCK_MONOTONIC, &t), "sem: main thread waits, a thread posts");
  poster.join();
  std::thread glibc_poster([&] {
    SleepMs(50);
    Must(glibc_post(&s), "glibc sem_post");
  });
  t = After(CLOCK_REALTIME, kFarSeconds);
  ShowOk(sem_timedwait(&s, &t), "sem: main thread waits, glibc's own sem_post");
  glibc_poster.join();
  sem_destroy(&s);
}

// Deadlines on both clocks, a past deadline, and the argument checks, in glibc's order.
void SemTimeoutsAndArguments() {
  sem_t s;
  Must(sem_init(&s, 0, 0), "sem_init");
  for (clockid_t c : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
    std::thread th([&] {
      timespec t = After(c, 0, 30);
      Show(sem_clockwait(&s, c, &t), "sem: sem_clockwait(%s, +30ms), no post", ClockName(c));
    });
    th.join();
  }
  std::thread th([&] {
    timespec t = After(CLOCK_REALTIME, 0, 30);
    Show(sem_timedwait(&s, &t), "sem: sem_timedwait(+30ms), no post");
    timespec past = {1, 0};
    Show(sem_timedwait(&s, &past), "sem: sem_timedwait(past)");
    timespec bad = After(CLOCK_REALTIME, 1);
    bad.tv_nsec = 1000000000L;
    Show(sem_timedwait(&s, &bad), "sem: sem_timedwait(bad nsec)");
    Must(sem_post(&s), "sem_post");
    Show(sem_timedwait(&s, &bad), "sem: sem_timedwait(bad nsec) with a token");
    Show(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &past), "sem: sem_clockwait(bad clock)");
    Show(sem_trywait(&s), "sem: sem_trywait with a token");
    Show(sem_trywait(&s), "sem: sem_trywait, empty");
  });
  th.join();
  sem_destroy(&s);
}

// --- mutexes -------------------------------------------------------------------------------

// A pthread waits in glibc's own pthread_mutex_lock while the main thread holds the mutex: the
// program's unlock wakes it. Locking with glibc's own code and unlocking with the program's keeps
// glibc's user count right (pthread_mutex_destroy would say EBUSY).
void MutexWaiterInGlibc() {
  using Lock = int (*)(pthread_mutex_t*);
  static Lock glibc_lock = GlibcOwn<Lock>("pthread_mutex_lock");
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&mu);
  std::atomic<int> announced{0};
  std::thread waiter([&] {
    announced.fetch_add(1);
    ShowRc(glibc_lock(&mu), "mutex: glibc's pthread_mutex_lock, program's unlock");
    pthread_mutex_unlock(&mu);
  });
  Settle(announced, 1);
  pthread_mutex_unlock(&mu);
  waiter.join();
  ShowRc(glibc_lock(&mu), "mutex: glibc's lock");
  ShowRc(pthread_mutex_unlock(&mu), "mutex: program's unlock");
  ShowRc(pthread_mutex_destroy(&mu), "mutex: destroy");
}

// kMany pthreads contend with the main thread; timed locks on both clocks time out.
void MutexManyWaitersAndTimeouts() {
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  static long counter = 0;
  std::atomic<int> announced{0};
  pthread_mutex_lock(&mu);
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&] {
      announced.fetch_add(1);
      for (int k = 0; k < 50; ++k) {
        pthread_mutex_lock(&mu);
        ++counter;
        pthread_mutex_unlock(&mu);
      }
    });
  }
  Settle(announced, kMany);
  pthread_mutex_unlock(&mu);
  for (std::thread& t : threads) t.join();
  Say("mutex: %d threads x 50 increments -> %ld", kMany, counter);
  pthread_mutex_lock(&mu);
  std::thread th([&] {
    timespec t = After(CLOCK_REALTIME, 0, 30);
    ShowRc(pthread_mutex_timedlock(&mu, &t), "mutex: timedlock(+30ms) while held");
    t = After(CLOCK_MONOTONIC, 0, 30);
    ShowRc(pthread_mutex_clocklock(&mu, CLOCK_MONOTONIC, &t), "mutex: clocklock(MONOTONIC)");
  });
  th.join();
  pthread_mutex_unlock(&mu);
}

// --- condition variables -------------------------------------------------------------------

// kMany waiters (plain, timed on the condvar's clock, clockwait on either clock) on one
// predicate; one broadcast releases every one. Then signals, one per token, each consumed once.
void CondBroadcastAndSignal(clockid_t attr_clock) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, attr_clock);
  pthread_cond_t cv;
  pthread_cond_init(&cv, &attr);
  pthread_condattr_destroy(&attr);
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  bool go = false;
  int tokens = 0, consumed = 0, waiting = 0;
  std::atomic<int> timed_out{0};
  auto wait_once = [&](int i) {
    timespec own = After(attr_clock, kFarSeconds);
    timespec mono = After(CLOCK_MONOTONIC, kFarSeconds), real = After(CLOCK_REALTIME, kFarSeconds);
    int r = 0;
    switch (i % 4) {
      case 0:
        r = pthread_cond_wait(&cv, &mu);
        break;
      case 1:
        r = pthread_cond_timedwait(&cv, &mu, &own);
        break;
      case 2:
        r = pthread_cond_clockwait(&cv, &mu, CLOCK_MONOTONIC, &mono);
        break;
      default:
        r = pthread_cond_clockwait(&cv, &mu, CLOCK_REALTIME, &real);
        break;
    }
    if (r == ETIMEDOUT) timed_out.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&, i] {
      pthread_mutex_lock(&mu);
      ++waiting;
      while (!go) wait_once(i);
      while (tokens == 0) wait_once(i + 1);
      --tokens;
      ++consumed;
      pthread_mutex_unlock(&mu);
    });
  }
  for (;;) {
    pthread_mutex_lock(&mu);
    bool all = waiting == kMany;
    pthread_mutex_unlock(&mu);
    if (all) break;
    SleepMs(1);
  }
  SleepMs(50);
  pthread_mutex_lock(&mu);
  go = true;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < kMany; ++i) {
    pthread_mutex_lock(&mu);
    ++tokens;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
  }
  for (std::thread& t : threads) t.join();
  Say("cond(%s): %d waiters, broadcast then %d signals: consumed %d, timed out %d",
      ClockName(attr_clock), kMany, kMany, consumed, timed_out.load());

  // The main thread waits, a pthread signals.
  pthread_mutex_lock(&mu);
  go = false;
  std::thread signaller([&] {
    SleepMs(50);
    pthread_mutex_lock(&mu);
    go = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
  });
  int r = 0;
  while (!go && r == 0) {
    timespec t = After(attr_clock, kFarSeconds);
    r = pthread_cond_timedwait(&cv, &mu, &t);
  }
  pthread_mutex_unlock(&mu);
  signaller.join();
  ShowRc(r, "cond(%s): main thread waits, a thread signals", ClockName(attr_clock));

  std::thread th([&] {
    pthread_mutex_lock(&mu);
    timespec t = After(attr_clock, 0, 30);
    ShowRc(pthread_cond_timedwait(&cv, &mu, &t), "cond(%s): timedwait(+30ms), no signal",
           ClockName(attr_clock));
    clockid_t other = attr_clock == CLOCK_MONOTONIC ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    t = After(other, 0, 30);
    ShowRc(pthread_cond_clockwait(&cv, &mu, other, &t), "cond: clockwait(%s, +30ms), no signal",
           ClockName(other));
    pthread_mutex_unlock(&mu);
  });
  th.join();
  pthread_cond_destroy(&cv);
}

// --- rwlocks -------------------------------------------------------------------------------

// The main thread holds the write lock; kMany readers wait and all get in at its unlock; a writer
// waiting behind a reader held by the main thread gets in at the reader's unlock.
void RwlockReadersAndWriter() {
  static pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
  pthread_rwlock_wrlock(&l);
  std::atomic<int> announced{0}, got{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&, i] {
      announced.fetch_add(1);
      timespec t = After(CLOCK_REALTIME, kFarSeconds);
      int r = i % 2 ? pthread_rwlock_rdlock(&l) : pthread_rwlock_timedrdlock(&l, &t);
      if (r == 0) {
        got.fetch_add(1);
        pthread_rwlock_unlock(&l);
      }
    });
  }
  Settle(announced, kMany);
  pthread_rwlock_unlock(&l);
  for (std::thread& t : threads) t.join();
  Say("rwlock: %d readers behind a writer -> %d got in", kMany, got.load());
  pthread_rwlock_rdlock(&l);
  std::atomic<int> writer_announced{0};
  std::thread writer([&] {
    writer_announced.fetch_add(1);
    timespec t = After(CLOCK_MONOTONIC, 0, 30);
    ShowRc(pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &t), "rwlock: clockwrlock(+30ms)");
    ShowRc(pthread_rwlock_wrlock(&l), "rwlock: wrlock behind the main thread's read lock");
    pthread_rwlock_unlock(&l);
  });
  Settle(writer_announced, 1);
  SleepMs(50);
  pthread_rwlock_unlock(&l);
  writer.join();
}

}  // namespace

int main() {
  alarm(240);  // a lost wake-up ends the run instead of hanging it
  ManySemWaitersEachWokenByAPost();
  SemWaitersInGlibcAndOnTheMainThread();
  SemTimeoutsAndArguments();
  MutexWaiterInGlibc();
  MutexManyWaitersAndTimeouts();
  CondBroadcastAndSignal(CLOCK_REALTIME);
  CondBroadcastAndSignal(CLOCK_MONOTONIC);
  RwlockReadersAndWriter();
  return 0;
}
