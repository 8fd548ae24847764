// __thread and thread_local variables are one copy per thread (issue 14). In fibers mode with one
// worker (ONE_WORKER: GONET_WORKERS=1) every thread below is a fiber on the same OS thread, which
// is the hardest case: each switch must save one fiber's values and load the next one's.
//   - a new thread starts from the initial image: .tdata values, .tbss zero, C++ thread_locals
//     constructed on first use, whatever earlier threads stored;
//   - each thread's int and array survive a park in every kind of blocking call while the others
//     overwrite theirs: socket recv, mutex, condition variable, nanosleep, usleep, accept, a send
//     into a full socket buffer that main drains later, sem_wait, poll over sockets, a pipe read
//     (offloaded in fibers mode), pthread_join of a thread that stores values of its own, sigwait;
//   - C++ thread_local destructors run at the thread's exit, newest first, once per constructed
//     object, before the pthread key destructors;
//   - a value survives a call gonet cannot see (a raw read syscall) that makes the sysmon hand the
//     worker to another OS thread, and the parks after it;
//   - the same for a library dlopen'ed (by path) while threads exist, and its thread_local is
//     destroyed on the thread's own copy after a handoff too;
//   - exit() from a thread runs that thread's thread_local destructors first.
// Threads record what they saw; main prints it after the joins, so the transcript is the same in
// every mode whatever the interleaving. Every wait is bounded (alarm).
#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <atomic>
#include <string>

#include "loopback.h"
#include "transcript.h"

using namespace conf;

namespace {

constexpr int kThreads = 4;
constexpr int kArray = 32;

__thread int t_id = -1;         // .tdata
__thread int t_value;           // .tbss
__thread long t_array[kArray];  // .tbss
__thread char t_name[24] = "unnamed";

// What each thread saw, printed by main after the joins.
std::string g_log[kThreads];
pthread_key_t g_key;

void Log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Log(const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  // Threads outside the numbered ones (the handoff pairs) have no log: g_log[-1] was written
  // past the array's start (UBSan in the ASan build), natively too.
  if (t_id < 0 || t_id >= kThreads) return;
  g_log[t_id] += line;
  g_log[t_id] += '\n';
}

struct Tracked {
  explicit Tracked(const char* n) : name(n), owner(t_id) { Log("  construct %s", name); }
  ~Tracked() {
    // Runs at the owner's exit, on the owner's TLS: t_id is still the owner's.
    Log("  destroy %s (mine: %s)", name, YesNo(owner == t_id));
  }
  const char* name;
  int owner;
};
thread_local Tracked t_first("first");
thread_local Tracked t_second("second");

// Not inlined: a function may keep the thread pointer it read at its start across a call (gcc
// does for arrays), and after a handoff that names the old OS thread (README: the one hazard
// left). Real code has the same limit; here every TLS access after a park is in a fresh frame.
__attribute__((noinline)) void Fill(int v) {
  t_value = v;
  for (int j = 0; j < kArray; ++j) t_array[j] = static_cast<long>(v) * 1000 + j;
  snprintf(t_name, sizeof t_name, "name-%d", v);
}

__attribute__((noinline)) bool Intact(int v) {
  if (t_value != v) return false;
  for (int j = 0; j < kArray; ++j) {
    if (t_array[j] != static_cast<long>(v) * 1000 + j) return false;
  }
  char want[24];
  snprintf(want, sizeof want, "name-%d", v);
  return strcmp(t_name, want) == 0;
}

// Every thread parks in each kind of call in turn, after storing a value of its own for that kind
// (id * 100 + the call's number), and counts itself in g_waiting before the calls main releases.
int g_socks[kThreads][2];
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
bool g_go = false;
std::atomic<int> g_waiting{0};
int g_listeners[kThreads];
uint16_t g_ports[kThreads];
sem_t g_sem;
int g_pipes[kThreads][2];
constexpr size_t kSendBytes = 256 * 1024;  // far more than the sender's 4 KiB buffer holds
char g_send_data[kSendBytes];

// The thread a connection thread joins: it stores values of its own in the worker's TLS while
// its parent is parked in pthread_join, then waits for main's byte.
void* JoinedChild(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Fill(id * 100 + 50);
  char c;
  recv(g_socks[id][1], &c, 1, 0);
  return reinterpret_cast<void*>(intptr_t{Intact(id * 100 + 50)});
}

void* Run(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  int fresh_id = t_id, fresh_value = t_value;
  long fresh_array = t_array[kArray - 1];
  std::string fresh_name = t_name;
  t_id = id;
  Log("fresh: id %d value %d array %ld name %s", fresh_id, fresh_value, fresh_array,
      fresh_name.c_str());
  pthread_setspecific(g_key, &g_log[id]);
  (void)t_first;   // constructed here, on first use
  (void)t_second;  // then this one: destroyed first

  Fill(id * 100 + 1);
  g_waiting.fetch_add(1);
  char c;
  recv(g_socks[id][1], &c, 1, 0);  // main sends once every thread waits here
  Log("after recv: %s", YesNo(Intact(id * 100 + 1)));

  Fill(id * 100 + 2);
  g_waiting.fetch_add(1);
  pthread_mutex_lock(&g_mu);  // main holds it until every thread has come here
  pthread_mutex_unlock(&g_mu);
  Log("after mutex: %s", YesNo(Intact(id * 100 + 2)));

  Fill(id * 100 + 3);
  pthread_mutex_lock(&g_mu);
  g_waiting.fetch_add(1);
  while (!g_go) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  Log("after condvar: %s", YesNo(Intact(id * 100 + 3)));

  Fill(id * 100 + 4);
  timespec nap{0, 2000000};
  nanosleep(&nap, nullptr);
  Log("after nanosleep: %s", YesNo(Intact(id * 100 + 4)));
  Fill(id * 100 + 5);
  usleep(1000);
  Log("after usleep: %s", YesNo(Intact(id * 100 + 5)));

  Fill(id * 100 + 6);
  g_waiting.fetch_add(1);
  int conn = accept(g_listeners[id], nullptr, nullptr);  // main connects
  Log("after accept (%s): %s", conn >= 0 ? "a connection" : ErrnoName(errno),
      YesNo(Intact(id * 100 + 6)));
  if (conn >= 0) close(conn);

  Fill(id * 100 + 7);
  int sndbuf = 4096;
  setsockopt(g_socks[id][1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  g_waiting.fetch_add(1);
  ssize_t sent = send(g_socks[id][1], g_send_data, kSendBytes, 0);  // full until main drains
  Log("after send (%zd bytes): %s", sent, YesNo(Intact(id * 100 + 7)));

  Fill(id * 100 + 8);
  g_waiting.fetch_add(1);
  int rc = sem_wait(&g_sem);  // main posts once per thread
  Log("after sem_wait (%d): %s", rc, YesNo(Intact(id * 100 + 8)));

  Fill(id * 100 + 9);
  pollfd pfd[2] = {{g_socks[id][1], POLLIN, 0}, {g_listeners[id], POLLIN, 0}};
  g_waiting.fetch_add(1);
  rc = poll(pfd, 2, -1);  // main sends a byte on the pair
  Log("after poll (%d ready, revents %#x %#x): %s", rc, pfd[0].revents, pfd[1].revents,
      YesNo(Intact(id * 100 + 9)));
  recv(g_socks[id][1], &c, 1, 0);

  Fill(id * 100 + 10);
  g_waiting.fetch_add(1);
  ssize_t got = read(g_pipes[id][0], &c, 1);  // main writes; offloaded in fibers mode
  Log("after pipe read (%zd): %s", got, YesNo(Intact(id * 100 + 10)));

  Fill(id * 100 + 11);
  pthread_t child;
  Must(pthread_create(&child, nullptr, JoinedChild, reinterpret_cast<void*>(intptr_t{id})),
       "pthread_create(child)");
  g_waiting.fetch_add(1);
  void* child_ok = nullptr;
  rc = pthread_join(child, &child_ok);  // the child waits for main's byte
  Log("after pthread_join (%d; the child kept its own: %s): %s", rc, YesNo(child_ok != nullptr),
      YesNo(Intact(id * 100 + 11)));

  Fill(id * 100 + 12);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  g_waiting.fetch_add(1);
  int sig = 0;
  rc = sigwait(&usr1, &sig);  // main sends SIGUSR1 to this thread (blocked in every thread)
  Log("after sigwait (%d, %s): %s", rc, sig == SIGUSR1 ? "SIGUSR1" : "another signal",
      YesNo(Intact(id * 100 + 12)));
  Log("exit");
  return nullptr;
}

void WaitFor(int n) {
  while (g_waiting.load() < n) sched_yield();
}

void KeyDestructor(void* log) { *static_cast<std::string*>(log) += "  key destructor\n"; }

void EveryBlockingCallKind() {
  Must(pthread_key_create(&g_key, KeyDestructor), "pthread_key_create");
  for (auto& s : g_socks) Must(socketpair(AF_UNIX, SOCK_STREAM, 0, s), "socketpair");
  for (int i = 0; i < kThreads; ++i) g_listeners[i] = TcpListener(1, &g_ports[i]);
  for (auto& p : g_pipes) Must(pipe(p), "pipe");
  Must(sem_init(&g_sem, 0, 0), "sem_init");
  Pattern(g_send_data, kSendBytes);
  // SIGUSR1 stays pending on the thread it is sent to until that thread's sigwait takes it.
  sigset_t usr1, saved;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &saved);
  pthread_mutex_lock(&g_mu);
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    Must(pthread_create(&threads[i], nullptr, Run, reinterpret_cast<void*>(intptr_t{i})),
         "pthread_create");
  }
  WaitFor(kThreads);
  for (int i = kThreads - 1; i >= 0; --i) send(g_socks[i][0], "x", 1, 0);
  WaitFor(2 * kThreads);
  pthread_mutex_unlock(&g_mu);
  WaitFor(3 * kThreads);
  pthread_mutex_lock(&g_mu);
  g_go = true;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  WaitFor(4 * kThreads);  // accept
  int clients[kThreads];
  for (int i = kThreads - 1; i >= 0; --i) clients[i] = TcpConnect(g_ports[i]);
  WaitFor(5 * kThreads);  // send: drain every sender, the last one first
  static char drained[kSendBytes];
  for (int i = kThreads - 1; i >= 0; --i) {
    RecvExactly(g_socks[i][0], drained, kSendBytes);
    if (memcmp(drained, g_send_data, kSendBytes) != 0) Fail("drained bytes differ");
  }
  WaitFor(6 * kThreads);  // sem_wait
  for (int i = 0; i < kThreads; ++i) sem_post(&g_sem);
  WaitFor(7 * kThreads);  // poll
  for (int i = kThreads - 1; i >= 0; --i) send(g_socks[i][0], "p", 1, 0);
  WaitFor(8 * kThreads);  // pipe read
  for (int i = kThreads - 1; i >= 0; --i) Must(write(g_pipes[i][1], "r", 1), "write(pipe)");
  WaitFor(9 * kThreads);  // pthread_join: release the children
  for (int i = kThreads - 1; i >= 0; --i) send(g_socks[i][0], "j", 1, 0);
  WaitFor(10 * kThreads);  // sigwait
  for (int i = kThreads - 1; i >= 0; --i) pthread_kill(threads[i], SIGUSR1);
  for (pthread_t t : threads) pthread_join(t, nullptr);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  for (int i = 0; i < kThreads; ++i) {
    close(clients[i]);
    close(g_listeners[i]);
    close(g_pipes[i][0]);
    close(g_pipes[i][1]);
  }
  sem_destroy(&g_sem);
  for (int i = 0; i < kThreads; ++i) Say("thread %d:\n%s", i, g_log[i].c_str());
  Say("main's own: id %d value %d name %s", t_id, t_value, t_name);
}

// Destroyed at its thread's exit, on that thread's own copy (after the handoff below too).
struct HandoffTracked {
  ~HandoffTracked();
  long value = 0;
};
thread_local HandoffTracked t_handoff_tracked;
bool g_handoff_dtor_on_own_copy = false;
HandoffTracked::~HandoffTracked() {
  g_handoff_dtor_on_own_copy = this == &t_handoff_tracked && value == 501;
}

// A raw read syscall blocks the worker without gonet seeing it: with one worker, the writer can
// only run after the sysmon hands the worker to another OS thread.
void AcrossAHandoff() {
  int fds[2];
  Must(pipe(fds), "pipe");
  static bool reader_ok[3], writer_ok;
  static std::atomic<bool> reading{false};
  pthread_t r, w;
  pthread_create(
      &r, nullptr,
      [](void* p) -> void* {
        int fd = *static_cast<int*>(p);
        t_id = 0;
        Fill(501);
        t_handoff_tracked.value = 501;  // constructed here, destroyed at this thread's exit
        reading = true;
        char c;
        syscall(SYS_read, fd, &c, 1);  // unseen: holds the worker
        reader_ok[0] = Intact(501);
        usleep(1000);  // parks, and resumes on the worker's new OS thread
        reader_ok[1] = Intact(501);
        Fill(502);
        usleep(1000);
        reader_ok[2] = Intact(502);
        return nullptr;
      },
      &fds[0]);
  pthread_create(
      &w, nullptr,
      [](void* p) -> void* {
        int fd = *static_cast<int*>(p);
        Fill(601);
        while (!reading.load()) sched_yield();
        syscall(SYS_write, fd, "k", 1);
        usleep(1000);
        writer_ok = Intact(601);
        return nullptr;
      },
      &fds[1]);
  pthread_join(r, nullptr);
  pthread_join(w, nullptr);
  Say("handoff: reader after the unseen read %s, after a park %s, after another %s; writer %s",
      YesNo(reader_ok[0]), YesNo(reader_ok[1]), YesNo(reader_ok[2]), YesNo(writer_ok));
  Say("handoff: the reader's thread_local destroyed on its own copy: %s",
      YesNo(g_handoff_dtor_on_own_copy));
  close(fds[0]);
  close(fds[1]);
}

// A library dlopen'ed by path while threads exist: each keeps its own values of the library's
// __thread and thread_local variables; its destructors run once per thread that constructed one.
struct Lib {
  int (*get)();
  void (*set)(int);
  bool (*consistent)(int);
  int (*constructed)();
  int (*destroyed)();
};
Lib g_lib;
int g_lib_socks[kThreads][2];
bool g_lib_ok[kThreads][2];
int g_lib_fresh[kThreads];
std::atomic<int> g_lib_ready{0};

void* UseLibrary(void* arg) {
  int id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  char c;
  recv(g_lib_socks[id][1], &c, 1, 0);  // parked while main dlopens
  g_lib_fresh[id] = g_lib.get();
  g_lib.set(id + 100);
  g_lib_ready.fetch_add(1);
  recv(g_lib_socks[id][1], &c, 1, 0);  // every thread has set its own before any goes on
  g_lib_ok[id][0] = g_lib.consistent(id + 100);
  g_lib.set(id + 200);
  usleep(1000);
  g_lib_ok[id][1] = g_lib.consistent(id + 200);
  return nullptr;
}

// As AcrossAHandoff, for a thread_local of the dlopen'ed library (dynamic TLS, reached through
// __tls_get_addr): its destructor runs on the reader's own copy, wherever the reader exits.
void AcrossAHandoffInTheLibrary(void* h) {
  static void (*track)(long) = reinterpret_cast<void (*)(long)>(dlsym(h, "conf_lib_track"));
  auto on_own_copy =
      reinterpret_cast<bool (*)()>(dlsym(h, "conf_lib_tracked_destroyed_on_own_copy"));
  if (track == nullptr || on_own_copy == nullptr) Fail("dlsym");
  int fds[2];
  Must(pipe(fds), "pipe");
  static std::atomic<bool> reading{false};
  pthread_t r, w;
  pthread_create(
      &r, nullptr,
      [](void* p) -> void* {
        int fd = *static_cast<int*>(p);
        track(701);  // constructed here, destroyed at this thread's exit
        reading = true;
        char c;
        syscall(SYS_read, fd, &c, 1);  // unseen: holds the worker
        usleep(1000);                  // parks, and resumes on the worker's new OS thread
        return nullptr;
      },
      &fds[0]);
  pthread_create(
      &w, nullptr,
      [](void* p) -> void* {
        int fd = *static_cast<int*>(p);
        while (!reading.load()) sched_yield();
        syscall(SYS_write, fd, "k", 1);
        return nullptr;
      },
      &fds[1]);
  pthread_join(r, nullptr);
  pthread_join(w, nullptr);
  Say("library handoff: the reader's thread_local destroyed on its own copy: %s",
      YesNo(on_own_copy()));
  close(fds[0]);
  close(fds[1]);
}

void InADlopenedLibrary() {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) Fail("readlink");
  path[n] = '\0';
  strcpy(strrchr(path, '/') + 1, "libconf_thread_local_lib.so");
  for (auto& s : g_lib_socks) Must(socketpair(AF_UNIX, SOCK_STREAM, 0, s), "socketpair");
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    pthread_create(&threads[i], nullptr, UseLibrary, reinterpret_cast<void*>(intptr_t{i}));
  }
  void* h = dlopen(path, RTLD_NOW);
  if (h == nullptr) Fail("dlopen");
  g_lib.get = reinterpret_cast<int (*)()>(dlsym(h, "conf_lib_get"));
  g_lib.set = reinterpret_cast<void (*)(int)>(dlsym(h, "conf_lib_set"));
  g_lib.consistent = reinterpret_cast<bool (*)(int)>(dlsym(h, "conf_lib_consistent"));
  g_lib.constructed = reinterpret_cast<int (*)()>(dlsym(h, "conf_lib_constructed"));
  g_lib.destroyed = reinterpret_cast<int (*)()>(dlsym(h, "conf_lib_destroyed"));
  for (auto& s : g_lib_socks) send(s[0], "x", 1, 0);
  while (g_lib_ready.load() < kThreads) sched_yield();
  for (auto& s : g_lib_socks) send(s[0], "x", 1, 0);
  for (pthread_t t : threads) pthread_join(t, nullptr);
  for (int i = 0; i < kThreads; ++i) {
    Say("library, thread %d: fresh value %d, own values after recv %s, after usleep %s", i,
        g_lib_fresh[i], YesNo(g_lib_ok[i][0]), YesNo(g_lib_ok[i][1]));
  }
  Say("library: %d sessions constructed, %d destroyed", g_lib.constructed(), g_lib.destroyed());
  Say("library: main's value %d", g_lib.get());
  AcrossAHandoffInTheLibrary(h);
}

// exit() runs the calling thread's thread_local destructors, then the atexit handlers.
struct SaysGoodbye {
  ~SaysGoodbye() { Say("exit: the exiting thread's thread_local destroyed"); }
  int touched = 0;
};
thread_local SaysGoodbye t_goodbye;

void ExitFromAThread() {
  atexit([] { Say("exit: atexit handler"); });
  pthread_t t;
  pthread_create(
      &t, nullptr,
      [](void*) -> void* {
        t_goodbye.touched = 1;
        exit(0);
      },
      nullptr);
  pthread_join(t, nullptr);  // never returns: the thread exits the process
}

}  // namespace

int main() {
  alarm(60);
  EveryBlockingCallKind();
  AcrossAHandoff();
  InADlopenedLibrary();
  Say("done");
  ExitFromAThread();
  return 1;
}
