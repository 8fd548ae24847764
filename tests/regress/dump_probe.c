// dump_probe: a thread-per-task program whose threads, run as fibers, park on every kind of wait
// that `gonet dump` names: accept on a socket, a mutex, a condition variable, a semaphore, a
// sleep, a poll of a pipe (on the netpoller) and a read of a pipe that runs on an offload helper
// (tests/regress/dump_test.py). It
// prints "listening on PORT" like the sample daemons; the first connection releases everything
// and the program exits 0. alarm() bounds its life. Its main thread waits in nanosleep, which
// parks nothing of gonet's (an OS thread sleeps in the kernel), as Apache's child does: the dump
// must be answered by gonet's own sysmon (core/observe/dump.h, round one).
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int g_listen = -1;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;  // held by the holder until released
static sem_t g_held;                                      // the holder holds g_mu
static pthread_mutex_t g_cmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_go = 0;  // guarded by g_cmu
static sem_t g_sem;
static volatile int g_released;  // the holder got its connection

void* ProbeHolder(void* arg) {
  pthread_mutex_lock(&g_mu);
  sem_post(&g_held);
  int c = accept(g_listen, NULL, NULL);
  if (c >= 0) close(c);
  __atomic_store_n(&g_released, 1, __ATOMIC_RELEASE);
  pthread_mutex_lock(&g_cmu);
  g_go = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_cmu);
  sem_post(&g_sem);
  pthread_mutex_unlock(&g_mu);
  return arg;
}

void* ProbeLocker(void* arg) {
  while (sem_wait(&g_held) != 0) {
  }
  pthread_mutex_lock(&g_mu);
  pthread_mutex_unlock(&g_mu);
  return arg;
}

void* ProbeCondWaiter(void* arg) {
  pthread_mutex_lock(&g_cmu);
  while (!g_go) pthread_cond_wait(&g_cv, &g_cmu);
  pthread_mutex_unlock(&g_cmu);
  return arg;
}

void* ProbeSemWaiter(void* arg) {
  while (sem_wait(&g_sem) != 0) {
  }
  return arg;
}

void* ProbePoller(void* arg) {
  int p[2];
  if (pipe(p) != 0) return arg;
  struct pollfd pfd = {p[0], POLLIN, 0};
  for (;;) poll(&pfd, 1, -1);  // nobody writes: parked on the netpoller until the process ends
  return arg;
}

void* ProbeReader(void* arg) {
  int p[2];
  char c;
  if (pipe(p) != 0) return arg;
  for (;;) read(p[0], &c, 1);  // nobody writes: an offloaded read, until the process ends
  return arg;
}

void* ProbeSleeper(void* arg) {
  for (;;) sleep(3600);  // ends with the process
  return arg;
}

int main(void) {
  alarm(120);  // a safety net: SIGALRM's default action ends a probe nobody released
  sem_init(&g_held, 0, 0);
  sem_init(&g_sem, 0, 0);
  g_listen = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (g_listen < 0 || bind(g_listen, (struct sockaddr*)&a, sizeof a) != 0 ||
      listen(g_listen, 8) != 0 || getsockname(g_listen, (struct sockaddr*)&a, &len) != 0) {
    perror("dump_probe: listen");
    return 1;
  }
  void* (*joined[])(void*) = {ProbeHolder, ProbeLocker, ProbeCondWaiter, ProbeSemWaiter};
  pthread_t t[4];
  for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, joined[i], NULL);
  pthread_t sleeper;
  pthread_create(&sleeper, NULL, ProbeSleeper, NULL);
  pthread_detach(sleeper);
  pthread_t poller, reader;
  pthread_create(&poller, NULL, ProbePoller, NULL);
  pthread_detach(poller);
  pthread_create(&reader, NULL, ProbeReader, NULL);
  pthread_detach(reader);
  printf("listening on %d\n", ntohs(a.sin_port));
  fflush(stdout);
  while (!__atomic_load_n(&g_released, __ATOMIC_ACQUIRE)) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
  return 0;
}
