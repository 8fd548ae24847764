// When no stack can be allocated for a new thread (the address-space limit is reached),
// pthread_create fails with EAGAIN and the threads already made keep running. In fibers mode the
// new "thread" is a fiber whose stack gonet maps: the program must see the same EAGAIN, not a
// crash, and the process must stay usable (issue 7: exhaustion).
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>

#include "transcript.h"

using namespace conf;

namespace {
std::atomic<int> g_ran{0};
std::atomic<bool> g_release{false};

void* Idle(void*) {
  g_ran.fetch_add(1);
  while (!g_release.load()) usleep(1000);
  return nullptr;
}
}  // namespace

int main() {
  // 16 MiB stacks under a 512 MiB address-space limit: the limit is reached after a few dozen.
  // (Not 8 MiB: that is glibc's default size, which fibers mode reads as "no size asked for"
  // and replaces with its own small default.)
  rlimit rl{512u << 20, 512u << 20};
  if (setrlimit(RLIMIT_AS, &rl) != 0) {
    Say("setrlimit failed: %s", ErrnoName(errno));
    return 1;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 16u << 20);
  pthread_t threads[256];
  int made = 0, rc = 0;
  for (; made < 256; ++made) {
    rc = pthread_create(&threads[made], &attr, Idle, nullptr);
    if (rc != 0) break;
  }
  Say("pthread_create until the limit -> %s after %s", ErrnoName(rc),
      made > 0 ? "some threads" : "no thread");
  while (g_ran.load() < made) usleep(1000);
  Say("every created thread ran: yes");
  g_release.store(true);
  int joined = 0;
  for (int i = 0; i < made; ++i) joined += pthread_join(threads[i], nullptr) == 0;
  Say("every created thread joined: %s", YesNo(joined == made));
  // With the stacks given back, creating a thread works again.
  pthread_t again;
  g_release.store(true);
  Say("pthread_create after the joins -> %s",
      ErrnoName(pthread_create(&again, &attr, Idle, nullptr)));
  pthread_join(again, nullptr);
  return 0;
}
