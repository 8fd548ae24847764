// Futexes a program makes itself through syscall(SYS_futex) (Rust's std locks, libstdc++'s
// std::atomic::wait and std::counting_semaphore): waits return what the kernel says (0 when
// woken, EAGAIN when the word differs, ETIMEDOUT at a relative or absolute deadline on either
// clock, EINVAL for a zero bitset), and a wake reaches each waiter, whoever waits (a pthread,
// the main thread) and whoever wakes. Issue 13: in fibers mode these waits held their worker's OS
// thread in the kernel until the sysmon handed the worker off; now a fiber parks.
//
// Waits that are woken have deadlines far beyond the wake, so none depends on timing.
#include <linux/futex.h>
#include <sys/syscall.h>

#include <atomic>
#include <semaphore>
#include <thread>
#include <vector>

#include "deadline.h"
#include "transcript.h"

using namespace conf;

namespace {

constexpr int kMany = 200;

long Futex(std::atomic<uint32_t>* w, int op, uint32_t val, const timespec* t = nullptr,
           uint32_t bitset = FUTEX_BITSET_MATCH_ANY) {
  return syscall(SYS_futex, w, op, val, t, nullptr, bitset);
}

// Waits until *w != val, as a futex user loops; returns the last wait's result.
long WaitWhileEquals(std::atomic<uint32_t>* w, uint32_t val, int op, const timespec* t,
                     uint32_t bitset = FUTEX_BITSET_MATCH_ANY) {
  long r = 0;
  while (w->load() == val) {
    r = Futex(w, op, val, t, bitset);
    if (r < 0 && errno != EAGAIN && errno != EINTR) return -errno;
  }
  return 0;
}

void RawWaitsAndTheirErrors() {
  static std::atomic<uint32_t> w{0};
  Show(Futex(&w, FUTEX_WAIT_PRIVATE, 1), "futex: WAIT, word differs");
  timespec rel = {0, 30 * 1000000L};
  std::thread th([&] {
    Show(Futex(&w, FUTEX_WAIT_PRIVATE, 0, &rel), "futex: WAIT(+30ms relative), no wake");
    timespec mono = After(CLOCK_MONOTONIC, 0, 30);
    Show(Futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &mono), "futex: WAIT_BITSET(MONOTONIC +30ms)");
    timespec real = After(CLOCK_REALTIME, 0, 30);
    Show(Futex(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &real),
         "futex: WAIT_BITSET|CLOCK_REALTIME(+30ms)");
    timespec past = {1, 0};
    Show(Futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, &past), "futex: WAIT_BITSET(past)");
    Show(Futex(&w, FUTEX_WAIT_BITSET_PRIVATE, 0, nullptr, 0), "futex: WAIT_BITSET(bitset 0)");
    timespec bad = {0, 1000000000L};
    Show(Futex(&w, FUTEX_WAIT_PRIVATE, 0, &bad), "futex: WAIT(bad nsec)");
    Show(Futex(&w, FUTEX_WAKE_PRIVATE, 1), "futex: WAKE with nobody waiting");
  });
  th.join();
}

// kMany pthreads wait (WAIT and WAIT_BITSET, on distinct bits); the main thread sets the word
// and wakes every one; then the main thread waits and a pthread wakes it.
void ManyWaitersWokenByTheMainThreadAndBack() {
  static std::atomic<uint32_t> w{0};
  std::atomic<int> announced{0}, done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&, i] {
      announced.fetch_add(1);
      timespec far = After(CLOCK_MONOTONIC, 0, 60000);
      long r = i % 2 ? WaitWhileEquals(&w, 0, FUTEX_WAIT_PRIVATE, nullptr)
                     : WaitWhileEquals(&w, 0, FUTEX_WAIT_BITSET_PRIVATE, &far, 1u << (i % 32));
      if (r == 0) done.fetch_add(1);
    });
  }
  while (announced.load() < kMany) SleepMs(1);
  SleepMs(50);
  w.store(1);
  Futex(&w, FUTEX_WAKE_PRIVATE, INT32_MAX);
  for (std::thread& t : threads) t.join();
  Say("futex: %d waiters, one WAKE(all) -> %d done", kMany, done.load());

  w.store(0);
  std::thread waker([&] {
    SleepMs(50);
    w.store(1);
    syscall(SYS_futex, &w, FUTEX_WAKE_BITSET_PRIVATE, 1, nullptr, nullptr, 4u);
  });
  Show(WaitWhileEquals(&w, 0, FUTEX_WAIT_BITSET_PRIVATE, nullptr, 4u),
       "futex: main thread waits on bit 2, a thread wakes bit 2");
  waker.join();
}

// libstdc++'s waits: std::atomic::wait/notify_one and std::counting_semaphore.
void LibstdcxxWaits() {
  static std::atomic<int> flag{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&] {
      flag.wait(0);
      done.fetch_add(1);
    });
  }
  SleepMs(50);
  flag.store(1);
  flag.notify_all();
  for (std::thread& t : threads) t.join();
  Say("atomic::wait: %d waiters, notify_all -> %d done", kMany, done.load());

  static std::counting_semaphore<> sem(0);
  std::atomic<int> acquired{0};
  threads.clear();
  for (int i = 0; i < kMany; ++i) {
    threads.emplace_back([&] {
      if (sem.try_acquire_for(std::chrono::seconds(60))) acquired.fetch_add(1);
    });
  }
  SleepMs(50);
  for (int i = 0; i < kMany; ++i) sem.release();
  for (std::thread& t : threads) t.join();
  Say("counting_semaphore: %d waiters, %d releases -> %d acquired, try_acquire %s", kMany, kMany,
      acquired.load(), YesNo(sem.try_acquire()));
  std::thread th([&] {
    Say("counting_semaphore: try_acquire_for(30ms), empty -> %s",
        YesNo(sem.try_acquire_for(std::chrono::milliseconds(30))));
  });
  th.join();
}

}  // namespace

int main() {
  alarm(240);  // a lost wake-up ends the run instead of hanging it
  RawWaitsAndTheirErrors();
  ManyWaitersWokenByTheMainThreadAndBack();
  LibstdcxxWaits();
  return 0;
}
