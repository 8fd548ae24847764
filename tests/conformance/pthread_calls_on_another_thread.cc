// Every glibc call that takes a pthread_t, made on another (live, blocked) thread: scheduling,
// names, the CPU-time clock, affinity, attributes, kill with signal 0, equality, detach and the
// joins. Only what is the same natively is printed: return values, and whether what was set
// reads back equal.
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <cstring>

#include "transcript.h"

using namespace conf;

namespace {

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
bool g_release = false;
pthread_t g_self_seen;

// Blocks until main releases it: alive for every call.
void* Hold(void*) {
  g_self_seen = pthread_self();
  pthread_mutex_lock(&g_mu);
  while (!g_release) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  return reinterpret_cast<void*>(7);
}

void* Quick(void*) { return reinterpret_cast<void*>(9); }

void Release() {
  pthread_mutex_lock(&g_mu);
  g_release = true;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

void Sched(pthread_t t) {
  Say("== scheduling");
  int policy = -1;
  sched_param p{};
  ShowRc(pthread_getschedparam(t, &policy, &p), "pthread_getschedparam");
  Say("policy is SCHED_OTHER: %s, priority 0: %s", YesNo(policy == SCHED_OTHER),
      YesNo(p.sched_priority == 0));
  sched_param bad{};
  bad.sched_priority = 5;
  ShowRc(pthread_setschedparam(t, SCHED_OTHER, &bad), "pthread_setschedparam(OTHER, 5)");
  ShowRc(pthread_setschedparam(t, 12345, &p), "pthread_setschedparam(bad policy)");
  sched_param zero{};
  ShowRc(pthread_setschedparam(t, SCHED_BATCH, &zero), "pthread_setschedparam(BATCH, 0)");
  ShowRc(pthread_getschedparam(t, &policy, &p), "pthread_getschedparam");
  Say("reads back SCHED_BATCH: %s", YesNo(policy == SCHED_BATCH));
  ShowRc(pthread_setschedprio(t, 3), "pthread_setschedprio(3) under BATCH");
  ShowRc(pthread_setschedprio(t, 0), "pthread_setschedprio(0)");
  ShowRc(pthread_setschedparam(t, SCHED_OTHER, &zero), "pthread_setschedparam(OTHER, 0)");
  ShowRc(pthread_getschedparam(t, &policy, &p), "pthread_getschedparam");
  Say("reads back SCHED_OTHER: %s", YesNo(policy == SCHED_OTHER));
}

void Names(pthread_t t) {
  Say("== names");
  char name[32] = {};
  char self_name[32] = {};
  ShowRc(pthread_getname_np(t, name, sizeof name), "pthread_getname_np");
  pthread_getname_np(pthread_self(), self_name, sizeof self_name);
  Say("inherited the creator's name: %s", YesNo(strcmp(name, self_name) == 0));
  ShowRc(pthread_setname_np(t, "conf-worker"), "pthread_setname_np(conf-worker)");
  ShowRc(pthread_getname_np(t, name, sizeof name), "pthread_getname_np");
  Say("reads back: %s", YesNo(strcmp(name, "conf-worker") == 0));
  ShowRc(pthread_getname_np(t, name, 8), "pthread_getname_np(8-byte buffer)");
  ShowRc(pthread_setname_np(t, "a-name-longer-than-fifteen"), "pthread_setname_np(too long)");
  ShowRc(pthread_getname_np(t, name, sizeof name), "pthread_getname_np");
  Say("unchanged: %s", YesNo(strcmp(name, "conf-worker") == 0));
}

void Clock(pthread_t t) {
  Say("== CPU-time clock");
  clockid_t c;
  ShowRc(pthread_getcpuclockid(t, &c), "pthread_getcpuclockid");
  timespec ts{};
  Show(clock_gettime(c, &ts), "clock_gettime(that clock)");
  clockid_t mine;
  pthread_getcpuclockid(pthread_self(), &mine);
  Say("differs from the caller's clock: %s", YesNo(mine != c));
}

void Affinity(pthread_t t) {
  Say("== affinity");
  cpu_set_t all;
  CPU_ZERO(&all);
  ShowRc(pthread_getaffinity_np(t, sizeof all, &all), "pthread_getaffinity_np");
  cpu_set_t mine;
  sched_getaffinity(0, sizeof mine, &mine);
  Say("same as the process's: %s", YesNo(CPU_EQUAL(&all, &mine)));
  int first = -1;
  for (int i = 0; i < CPU_SETSIZE && first < 0; ++i) {
    if (CPU_ISSET(i, &all)) first = i;
  }
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ShowRc(pthread_setaffinity_np(t, sizeof one, &one), "pthread_setaffinity_np(first cpu)");
  cpu_set_t back;
  ShowRc(pthread_getaffinity_np(t, sizeof back, &back), "pthread_getaffinity_np");
  Say("reads back: %s", YesNo(CPU_EQUAL(&back, &one)));
  cpu_set_t none;
  CPU_ZERO(&none);
  ShowRc(pthread_setaffinity_np(t, sizeof none, &none), "pthread_setaffinity_np(empty)");
  ShowRc(pthread_setaffinity_np(t, sizeof all, &all), "pthread_setaffinity_np(all again)");
  ShowRc(pthread_getaffinity_np(t, sizeof back, &back), "pthread_getaffinity_np");
  Say("reads back: %s", YesNo(CPU_EQUAL(&back, &all)));
}

void Attr(pthread_t t) {
  Say("== attributes");
  pthread_attr_t a;
  ShowRc(pthread_getattr_np(t, &a), "pthread_getattr_np");
  int detach = -1;
  pthread_attr_getdetachstate(&a, &detach);
  Say("joinable: %s", YesNo(detach == PTHREAD_CREATE_JOINABLE));
  void* stack = nullptr;
  size_t size = 0;
  pthread_attr_getstack(&a, &stack, &size);
  Say("has a stack: %s", YesNo(stack != nullptr && size > 0));
  int policy = -1;
  pthread_attr_getschedpolicy(&a, &policy);
  Say("policy SCHED_OTHER: %s", YesNo(policy == SCHED_OTHER));
  pthread_attr_destroy(&a);
}

}  // namespace

int main() {
  pthread_t t;
  Must(-pthread_create(&t, nullptr, Hold, nullptr), "pthread_create");
  while (true) {  // until it has run (its pthread_self is what we hold)
    pthread_mutex_lock(&g_mu);
    bool seen = pthread_equal(g_self_seen, t);
    pthread_mutex_unlock(&g_mu);
    if (seen) break;
    SleepMs(1);
  }
  Say("== identity");
  Say("pthread_equal(its self, handle): %s", YesNo(pthread_equal(g_self_seen, t) != 0));
  Say("pthread_equal(handle, main): %s", YesNo(pthread_equal(t, pthread_self()) != 0));
  ShowRc(pthread_kill(t, 0), "pthread_kill(0)");
  Sched(t);
  Names(t);
  Clock(t);
  Affinity(t);
  Attr(t);

  Say("== joins");
  void* ret = nullptr;
  ShowRc(pthread_tryjoin_np(t, &ret), "pthread_tryjoin_np (still running)");
  timespec soon;
  clock_gettime(CLOCK_REALTIME, &soon);
  soon.tv_nsec += 20 * 1000 * 1000;
  if (soon.tv_nsec >= 1000000000) {
    soon.tv_nsec -= 1000000000;
    soon.tv_sec += 1;
  }
  ShowRc(pthread_timedjoin_np(t, &ret, &soon), "pthread_timedjoin_np (20 ms)");
  timespec mono;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  ShowRc(pthread_clockjoin_np(t, &ret, CLOCK_MONOTONIC, &mono), "pthread_clockjoin_np (now)");
  Release();
  ShowRc(pthread_join(t, &ret), "pthread_join");
  Say("returned 7: %s", YesNo(ret == reinterpret_cast<void*>(7)));

  Say("== detach");
  pthread_t q;
  Must(-pthread_create(&q, nullptr, Quick, nullptr), "pthread_create");
  ShowRc(pthread_detach(q), "pthread_detach");
  pthread_t r;
  Must(-pthread_create(&r, nullptr, Quick, nullptr), "pthread_create");
  ShowRc(pthread_join(r, &ret), "pthread_join");
  Say("returned 9: %s", YesNo(ret == reinterpret_cast<void*>(9)));
  return 0;
}
