// Waits for another thread's initialisation or for a barrier's round, and C11 <threads.h>: every
// waiter is released exactly when the other side acts, and each initialisation runs once, whoever
// waits (pthreads, the main thread). Issue 13: in fibers mode pthread_once, C++ static
// initialisers and pthread_barrier_wait held their worker's OS thread while they waited, and
// glibc's C11 functions bypassed gonet's pthread hooks (thrd_create started an OS thread; a
// fiber waiting in mtx_lock could not be woken by gonet's unlock).
//
// No result depends on timing: the sleeps only make it likely that waiters are already asleep.
#include <pthread.h>
#include <threads.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "transcript.h"

using namespace conf;

namespace {

constexpr int kMany = 200;

std::atomic<int> g_once_runs{0};
pthread_once_t g_once = PTHREAD_ONCE_INIT;
void OnceInit() {
  SleepMs(50);
  g_once_runs.fetch_add(1);
}

void OnceWithManyWaiters() {
  std::atomic<int> after{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&] {
      pthread_once(&g_once, OnceInit);
      if (g_once_runs.load() == 1) after.fetch_add(1);
    });
  }
  pthread_once(&g_once, OnceInit);
  for (std::thread& t : threads) t.join();
  Say("pthread_once: %d threads and main -> init ran %d time(s), %d saw it done", kMany,
      g_once_runs.load(), after.load());
}

// std::call_once whose first attempt throws while others wait: one waiter runs it again.
void CallOnceRetriesAfterAThrow() {
  static std::once_flag flag;
  std::atomic<int> attempts{0}, threw{0};
  auto body = [&] {
    try {
      std::call_once(flag, [&] {
        int n = attempts.fetch_add(1);
        SleepMs(50);
        if (n == 0) throw std::runtime_error("first attempt");
      });
    } catch (const std::runtime_error&) {
      threw.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) threads.emplace_back(body);
  for (std::thread& t : threads) t.join();
  Say("std::call_once: 20 threads, first attempt throws -> attempts %d, threw %d", attempts.load(),
      threw.load());
}

struct Slow {
  Slow() {
    SleepMs(50);
    constructed.fetch_add(1);
  }
  static std::atomic<int> constructed;
  int value = 42;
};
std::atomic<int> Slow::constructed{0};

int ReadSlowStatic() {
  static Slow s;  // __cxa_guard_acquire / __cxa_guard_release
  return s.value;
}

void StaticInitialiserWithManyWaiters() {
  std::atomic<int> sum{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) threads.emplace_back([&] { sum.fetch_add(ReadSlowStatic()); });
  sum.fetch_add(ReadSlowStatic());
  for (std::thread& t : threads) t.join();
  Say("static local: %d threads and main -> constructed %d time(s), sum %d", kMany,
      Slow::constructed.load(), sum.load());
}

// A barrier of kMany pthreads and the main thread, three rounds: each round releases everyone,
// with one serial thread.
void BarrierRounds() {
  pthread_barrier_t b;
  pthread_barrier_init(&b, nullptr, kMany + 1);
  std::atomic<int> serial{0}, passed{0};
  auto round_trip = [&] {
    for (int r = 0; r < 3; ++r) {
      int x = pthread_barrier_wait(&b);
      if (x == PTHREAD_BARRIER_SERIAL_THREAD) {
        serial.fetch_add(1);
      } else if (x != 0) {
        Say("barrier: unexpected %d", x);
      }
      passed.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) threads.emplace_back(round_trip);
  round_trip();
  for (std::thread& t : threads) t.join();
  Say("barrier(%d): 3 rounds -> %d passed, %d serial", kMany + 1, passed.load(), serial.load());
  ShowRc(pthread_barrier_destroy(&b), "barrier: destroy");
}

// --- C11 -------------------------------------------------------------------------------------

mtx_t g_mtx;
cnd_t g_cnd;
bool g_go = false;
long g_counter = 0;
once_flag g_c11_once = ONCE_FLAG_INIT;
std::atomic<int> g_c11_once_runs{0};
std::atomic<int> g_c11_waiting{0};

int C11Worker(void* arg) {
  call_once(&g_c11_once, [] {
    SleepMs(20);
    g_c11_once_runs.fetch_add(1);
  });
  mtx_lock(&g_mtx);
  g_c11_waiting.fetch_add(1);
  while (!g_go) cnd_wait(&g_cnd, &g_mtx);
  for (int k = 0; k < 100; ++k) ++g_counter;
  mtx_unlock(&g_mtx);
  for (int k = 0; k < 100; ++k) {
    mtx_lock(&g_mtx);
    ++g_counter;
    mtx_unlock(&g_mtx);
  }
  return static_cast<int>(reinterpret_cast<intptr_t>(arg));
}

void C11Threads() {
  Show(mtx_init(&g_mtx, mtx_plain | mtx_timed), "c11: mtx_init(plain|timed)");
  Show(cnd_init(&g_cnd), "c11: cnd_init");
  constexpr int kThreads = 50;
  thrd_t threads[kThreads];
  int created = 0;
  for (int i = 0; i < kThreads; ++i) {
    created +=
        thrd_create(&threads[i], C11Worker, reinterpret_cast<void*>(intptr_t{i})) == thrd_success;
  }
  while (g_c11_waiting.load() < kThreads) SleepMs(1);
  SleepMs(20);
  mtx_lock(&g_mtx);
  g_go = true;
  cnd_broadcast(&g_cnd);
  mtx_unlock(&g_mtx);
  long results = 0;
  int joined = 0;
  for (int i = 0; i < kThreads; ++i) {
    int res = -1;
    joined += thrd_join(threads[i], &res) == thrd_success;
    results += res;
  }
  Say("c11: %d created, %d joined, results sum %ld, counter %ld, call_once ran %d", created, joined,
      results, g_counter, g_c11_once_runs.load());

  mtx_lock(&g_mtx);
  thrd_t t;
  thrd_create(
      &t,
      [](void*) -> int {
        Show(mtx_trylock(&g_mtx) == thrd_busy, "c11: mtx_trylock while held is thrd_busy");
        timespec ts;
        timespec_get(&ts, TIME_UTC);
        ts.tv_nsec += 30000000L;
        if (ts.tv_nsec >= 1000000000L) {
          ts.tv_sec += 1;
          ts.tv_nsec -= 1000000000L;
        }
        Show(mtx_timedlock(&g_mtx, &ts) == thrd_timedout, "c11: mtx_timedlock(+30ms) timed out");
        timespec nap = {0, 1000000L};
        Show(thrd_sleep(&nap, nullptr), "c11: thrd_sleep(1ms)");
        Show(thrd_equal(thrd_current(), thrd_current()) != 0, "c11: thrd_equal(current, current)");
        thrd_exit(7);
      },
      nullptr);
  int res = 0;
  Show(thrd_join(t, &res), "c11: thrd_join of thrd_exit(7)");
  Say("c11: result %d", res);
  mtx_unlock(&g_mtx);

  // A pthread waits in mtx_lock on a mutex the main thread holds; the main thread's unlock
  // wakes it.
  mtx_lock(&g_mtx);
  std::atomic<int> done{0};
  thrd_t w;
  thrd_create(
      &w,
      [](void* d) -> int {
        mtx_lock(&g_mtx);
        static_cast<std::atomic<int>*>(d)->store(1);
        mtx_unlock(&g_mtx);
        return 0;
      },
      &done);
  SleepMs(50);
  mtx_unlock(&g_mtx);
  thrd_join(w, nullptr);
  Say("c11: waiter in mtx_lock woken by the main thread's mtx_unlock -> %s", YesNo(done.load()));
  cnd_destroy(&g_cnd);
  mtx_destroy(&g_mtx);
}

}  // namespace

int main() {
  alarm(240);  // a lost wake-up ends the run instead of hanging it
  OnceWithManyWaiters();
  CallOnceRetriesAfterAThrow();
  StaticInitialiserWithManyWaiters();
  BarrierRounds();
  C11Threads();
  return 0;
}
