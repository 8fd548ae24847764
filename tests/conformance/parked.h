// parked.h: making one thread act only after another is blocked in a call.
//
// There is no portable way to observe "thread B is inside recv", so a scenario combines what it
// can observe (B has announced it is about to call, B's task is asleep) with a short sleep. Every
// scenario that uses this must print the same transcript even if the sleep turned out too short
// (B not yet in the call): the wait only makes the interesting interleaving likely, it never
// decides the result.
#pragma once

#include <sys/syscall.h>

#include <atomic>

#include "transcript.h"

namespace conf {

inline pid_t ThreadId() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// TaskSleeping: /proc/self/task/<tid>/stat shows state S (interruptible sleep): natively the
// thread sleeps in the blocking syscall, under gonet's threads mode in its parker.
inline bool TaskSleeping(pid_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  FILE* f = fopen(path, "re");
  if (f == nullptr) return false;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* paren = strrchr(buf, ')');
  return paren != nullptr && paren[1] == ' ' && paren[2] == 'S';
}

// Announcer: the blocked-to-be thread calls Announce() right before the call; the acting thread
// calls WaitParked() before acting.
class Announcer {
 public:
  void Announce() {
    tid_.store(ThreadId());
    announced_.store(true);
  }

  void WaitParked(int settle_ms = 100) {
    while (!announced_.load()) SleepMs(1);
    // Under gonet's fibers mode both sides may run on one worker thread: its task is then the
    // caller's own and never reads as asleep here, so only the settle sleep is left.
    if (tid_.load() != ThreadId()) {
      for (int i = 0; i < 500 && !TaskSleeping(tid_.load()); ++i) SleepMs(1);
    }
    SleepMs(settle_ms);
  }

  void Reset() { announced_.store(false); }

 private:
  std::atomic<bool> announced_{false};
  std::atomic<pid_t> tid_{0};
};

}  // namespace conf
