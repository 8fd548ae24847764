// pthread_cancel and pthread_exit as glibc does them, at every kind of cancellation point (issue
// 18): a thread cancelled in pthread_cond_wait unwinds with the mutex taken back (its C cleanup
// handler finds it held); in sem_wait, sem_timedwait and a read of an empty pipe (offloaded to a
// helper in fibers mode) it unwinds, and the pipe's byte is left for the next reader; C cleanup
// handlers (glibc's C macros, cancel_c_cleanup.c) and C++ destructors run interleaved in stack
// order; the unwind is seen by catch (abi::__forced_unwind&) and by catch (...), which rethrow;
// pthread_exit runs C handlers too; and with cancellation disabled a condition wait returns
// normally, the cancellation acting at pthread_testcancel once enabled.
#include <cxxabi.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "cancel_c_cleanup.h"
#include "transcript.h"

using namespace conf;

namespace {

std::string g_order;  // what ran, in order; printed by main after the join
pthread_mutex_t g_order_mu = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> g_parked{false};
std::atomic<bool> g_go{false};

extern "C" void Note(const char* what) {
  pthread_mutex_lock(&g_order_mu);
  if (!g_order.empty()) g_order += ", ";
  g_order += what;
  pthread_mutex_unlock(&g_order_mu);
}

extern "C" void Announce() { g_parked = true; }

struct Guard {
  const char* name;
  ~Guard() { Note(name); }
};

pthread_mutex_t g_mu;  // error-checking: an unlock by a thread that does not hold it is EPERM
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

void* CondWaiter(void*) {
  Guard g{"C++ destructor"};
  conf_c_cond_wait_forever(Note, &g_cv, &g_mu, Announce);
  return nullptr;
}

sem_t g_sem;

void* SemWaiter(void*) {
  Guard g{"C++ destructor"};
  Announce();
  int r = sem_wait(&g_sem);
  Note(r == 0 ? "sem_wait returned 0" : "sem_wait failed");
  return nullptr;
}

void* SemTimedWaiter(void*) {
  Guard g{"C++ destructor"};
  timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 30;
  Announce();
  int r = sem_timedwait(&g_sem, &deadline);
  Note(r == 0 ? "sem_timedwait returned 0" : "sem_timedwait failed");
  return nullptr;
}

int g_pipe[2];

void* PipeReader(void*) {
  Guard g{"C++ destructor"};
  char c;
  Announce();
  ssize_t n = read(g_pipe[0], &c, 1);
  Note(n == 1 ? "read returned a byte" : "read failed");
  return nullptr;
}

// C handler (outer) -> C++ destructor -> C handler (inner) -> park: unwound innermost first.
void Park(void*) {
  Announce();
  timespec t{30, 0};
  nanosleep(&t, nullptr);
  Note("nanosleep returned");
}
void InnerCxx(void*) {
  Guard g{"inner C++ destructor"};
  conf_c_with_cleanup(Note, "inner C handler", Park, nullptr);
}
void* Interleaved(void*) {
  Guard g{"outer C++ destructor"};
  conf_c_with_cleanup(Note, "outer C handler", InnerCxx, nullptr);
  return nullptr;
}

void* Catcher(void*) {
  Guard g{"C++ destructor"};
  try {
    try {
      Announce();
      timespec t{30, 0};
      nanosleep(&t, nullptr);
    } catch (abi::__forced_unwind&) {
      Note("caught abi::__forced_unwind, rethrowing");
      throw;
    }
  } catch (...) {
    Note("caught ..., rethrowing");
    throw;
  }
  return nullptr;
}

void ExitBody(void*) {
  Guard g{"inner C++ destructor"};
  Announce();
  conf_c_exit_with_cleanup(Note, "C handler", reinterpret_cast<void*>(42));
}
void* Exiter(void*) {
  Guard g{"outer C++ destructor"};
  conf_c_with_cleanup(Note, "outer C handler", ExitBody, nullptr);
  return nullptr;
}

void* DisabledCondWaiter(void*) {
  int old;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  Guard g{"C++ destructor"};
  pthread_mutex_lock(&g_mu);
  Announce();
  while (!g_go) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  Note("cond wait returned with cancellation disabled");
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
  pthread_testcancel();
  Note("testcancel returned");
  return nullptr;
}

void Case(const char* what, void* (*fn)(void*), bool cancel, void (*release)() = nullptr) {
  Say("== %s", what);
  g_order.clear();
  g_parked = false;
  g_go = false;
  pthread_t t;
  Must(-pthread_create(&t, nullptr, fn, nullptr), "pthread_create");
  while (!g_parked) SleepMs(1);
  SleepMs(20);
  if (cancel) ShowRc(pthread_cancel(t), "pthread_cancel");
  if (release != nullptr) {
    SleepMs(20);
    release();
  }
  void* ret = nullptr;
  ShowRc(pthread_join(t, &ret), "pthread_join");
  if (ret == PTHREAD_CANCELED) {
    Say("join value: PTHREAD_CANCELED");
  } else {
    Say("join value: %ld", static_cast<long>(reinterpret_cast<intptr_t>(ret)));
  }
  Say("ran: %s", g_order.c_str());
}

void ReleaseCond() {
  pthread_mutex_lock(&g_mu);
  g_go = true;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

}  // namespace

int main() {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&g_mu, &ma);
  Must(sem_init(&g_sem, 0, 0), "sem_init");
  Must(pipe(g_pipe), "pipe");

  Case("cancel in pthread_cond_wait", CondWaiter, true);
  ShowRc(pthread_mutex_trylock(&g_mu), "the mutex is free again: trylock");
  pthread_mutex_unlock(&g_mu);
  Case("cancel in sem_wait", SemWaiter, true);
  Case("cancel in sem_timedwait", SemTimedWaiter, true);
  int value = -1;
  sem_getvalue(&g_sem, &value);
  Say("semaphore value after the cancelled waits: %d", value);
  Case("cancel in read of an empty pipe", PipeReader, true);
  Show(write(g_pipe[1], "x", 1), "write a byte to the pipe");
  char c = 0;
  Show(read(g_pipe[0], &c, 1), "the next read takes it");
  Case("C handlers and C++ destructors unwind in stack order", Interleaved, true);
  Case("catch (abi::__forced_unwind&) and catch (...) see it and rethrow", Catcher, true);
  Case("pthread_exit runs C handlers and destructors", Exiter, false);
  Case("cancellation disabled: cond wait returns, testcancel acts once enabled", DisabledCondWaiter,
       true, ReleaseCond);
  return 0;
}
