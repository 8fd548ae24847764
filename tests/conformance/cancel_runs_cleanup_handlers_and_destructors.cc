// pthread_cancel of a thread parked in nanosleep, in pthread_join, or with cancellation disabled
// until it calls pthread_testcancel: the thread unwinds, running its cleanup handlers (innermost
// first) and the destructors of its C++ objects on the way, and pthread_join returns
// PTHREAD_CANCELED. pthread_cancel of a thread that has exited but not been joined returns 0.
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <string>

#include "transcript.h"

using namespace conf;

namespace {

std::string g_order;  // what ran, in order; printed by main after the join
pthread_mutex_t g_order_mu = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> g_parked{false};

void Note(const char* what) {
  pthread_mutex_lock(&g_order_mu);
  if (!g_order.empty()) g_order += ", ";
  g_order += what;
  pthread_mutex_unlock(&g_order_mu);
}

struct Guard {
  const char* name;
  ~Guard() { Note(name); }
};

void Outer(void*) { Note("outer cleanup"); }
void Inner(void*) { Note("inner cleanup"); }

void* Sleeper(void*) {
  Guard g{"destructor"};
  pthread_cleanup_push(Outer, nullptr);
  pthread_cleanup_push(Inner, nullptr);
  g_parked = true;
  timespec t{30, 0};
  nanosleep(&t, nullptr);
  Note("nanosleep returned");
  pthread_cleanup_pop(0);
  pthread_cleanup_pop(0);
  return nullptr;
}

pthread_t g_blocker;
void* Forever(void*) {
  timespec t{30, 0};
  nanosleep(&t, nullptr);
  return nullptr;
}

void* Joiner(void*) {
  Guard g{"destructor"};
  pthread_cleanup_push(Outer, nullptr);
  g_parked = true;
  pthread_join(g_blocker, nullptr);
  Note("join returned");
  pthread_cleanup_pop(0);
  return nullptr;
}

std::atomic<bool> g_go{false};
void* Disabled(void*) {
  int old;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  Guard g{"destructor"};
  pthread_cleanup_push(Outer, nullptr);
  g_parked = true;
  while (!g_go) {
    timespec t{0, 1000000};
    nanosleep(&t, nullptr);  // a cancellation point, but cancellation is disabled
  }
  Note("still running with cancellation disabled");
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
  pthread_testcancel();
  Note("testcancel returned");
  pthread_cleanup_pop(0);
  return nullptr;
}

void* Quick(void*) { return nullptr; }

void Case(const char* what, void* (*fn)(void*), bool release) {
  Say("== %s", what);
  g_order.clear();
  g_parked = false;
  g_go = false;
  pthread_t t;
  Must(-pthread_create(&t, nullptr, fn, nullptr), "pthread_create");
  while (!g_parked) SleepMs(1);
  SleepMs(20);
  ShowRc(pthread_cancel(t), "pthread_cancel");
  if (release) {
    SleepMs(20);
    g_go = true;
  }
  void* ret = nullptr;
  ShowRc(pthread_join(t, &ret), "pthread_join");
  Say("join value: %s", ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a normal return");
  Say("ran: %s", g_order.c_str());
}

}  // namespace

int main() {
  Case("cancel a thread in nanosleep", Sleeper, false);
  Must(-pthread_create(&g_blocker, nullptr, Forever, nullptr), "pthread_create");
  Case("cancel a thread in pthread_join", Joiner, false);
  ShowRc(pthread_cancel(g_blocker), "pthread_cancel the joined-for thread");
  ShowRc(pthread_join(g_blocker, nullptr), "pthread_join it");
  Case("cancel with cancellation disabled, acted on at pthread_testcancel", Disabled, true);
  Say("== cancel a thread that has exited");
  pthread_t q;
  Must(-pthread_create(&q, nullptr, Quick, nullptr), "pthread_create");
  SleepMs(20);
  ShowRc(pthread_cancel(q), "pthread_cancel");
  void* ret = nullptr;
  ShowRc(pthread_join(q, &ret), "pthread_join");
  Say("join value: %s", ret == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "a normal return");
  return 0;
}
