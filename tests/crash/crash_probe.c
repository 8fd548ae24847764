/* crash_probe: faults on purpose, for tests/crash/run_crash.py.
 *   gonet         a fault inside gonet: an invalid (non-NULL) iovec on the netpoller path, which
 *                 gonet reads before the kernel could answer EFAULT (a known gonet limit, README)
 *   program       a fault in the program's own code
 *   own           the same, with the program's own SIGSEGV handler installed
 *   thread_own    one thread spins for 400 ms of CPU while another, once it runs, writes through a
 *                 bad pointer; the program's SIGSEGV handler (on a sigaltstack) prints and exits
 *                 3. In fibers mode with one worker the spinner makes the sysmon hand the worker
 *                 to another OS thread, on which the fault then happens.
 *   thread_alt    the faulting thread sets up its own sigaltstack, then sleeps while the other
 *                 spins (in fibers mode with one worker it wakes on the worker's new OS thread),
 *                 then faults: the handler (SA_ONSTACK) must run on that thread's own stack.
 *   thread_kinds  as thread_own, for every other synchronous fault: in a second thread (started
 *                 while the spinner runs) SIGFPE (integer division by zero), SIGILL (ud2),
 *                 SIGBUS (a read past the end of a shared file mapping), SIGTRAP (int3) and
 *                 SIGABRT (abort), each caught by the program's SA_SIGINFO handler on the
 *                 thread's sigaltstack, which prints the signal, its si_code and where it ran,
 *                 and siglongjmps back for the next one
 *   thread_fault  a fault in the program's own code in a second thread, no handler
 *   thread_abort  abort() in a second thread, no handler
 *   hold          starts gonet's threads (a spinner that makes the sysmon hand its worker off
 *                 with one worker, a poll of a pipe on an offload helper), prints "ready" and
 *                 waits for stdin to close: run_crash.py reads every thread's blocked signals
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void own(int s) {
  (void)s;
  write(1, "own handler ran\n", 16);
  _exit(5);
}

static char alt[64 * 1024];
static void on_alt(int s) {
  (void)s;
  char here;
  int on = (uintptr_t)&here >= (uintptr_t)alt && (uintptr_t)&here < (uintptr_t)alt + sizeof alt;
  const char* msg = on ? "handler ran on the sigaltstack\n" : "handler ran off the sigaltstack\n";
  write(1, msg, strlen(msg));
  _exit(3);
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile int spinning;
/* The spin is counted in CPU time, not wall time: the sysmon hands a worker whose fiber computes
 * (a runnable machine) to a new OS thread once that fiber has used 200 ms of CPU
 * (core/fibers/machine_state.h), which a wall-clock spin on a busy machine may never reach.
 * hold spins longer. */
static double spin_seconds = 0.4;
static void* spin(void* arg) {
  (void)arg;
  spinning = 1;
  double end = cpu_now() + spin_seconds;
  while (cpu_now() < end) {
  }
  return NULL;
}

static volatile int alt_ready;
static void* fault(void* arg) {
  const char* what = arg;
  if (!strcmp(what, "thread_own") || !strcmp(what, "thread_alt")) {
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) perror("sigaltstack");
    stack_t back;
    if (sigaltstack(NULL, &back) != 0 || back.ss_sp != alt || back.ss_flags != 0) {
      puts("sigaltstack does not read back");
    }
  }
  if (!strcmp(what, "thread_alt")) {
    alt_ready = 1;
    while (!spinning) usleep(1000);
    usleep(50000);
  }
  if (!strcmp(what, "thread_abort")) abort();
  *(volatile int*)0x10 = 1;
  return NULL;
}

static sigjmp_buf kind_back;
static void on_kind(int s, siginfo_t* si, void* uc) {
  (void)uc;
  char here, line[128];
  int on = (uintptr_t)&here >= (uintptr_t)alt && (uintptr_t)&here < (uintptr_t)alt + sizeof alt;
  int n = snprintf(line, sizeof line, "%s code %d, %s the sigaltstack\n", sigabbrev_np(s),
                   si->si_code, on ? "on" : "off");
  write(1, line, (size_t)n);
  siglongjmp(kind_back, 1);
}

static void* fault_kinds(void* arg) {
  (void)arg;
  stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) perror("sigaltstack");
  int fd = memfd_create("crash_probe", 0);
  volatile char* past_end = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0); /* file is empty */
  volatile int zero = 0;
  for (int step = 0; step < 5; ++step) {
    if (sigsetjmp(kind_back, 1) != 0) continue;
    switch (step) {
      case 0: zero = 1000 / zero; break;
      case 1: __builtin_trap();
      case 2: (void)past_end[0]; break;
      case 3: __asm__ volatile("int3"); break;
      case 4: abort();
    }
    printf("step %d: no signal\n", step);
  }
  return NULL;
}

static int hold_pipe[2];
static void* poller(void* arg) {
  (void)arg;
  char c;
  read(hold_pipe[0], &c, 1); /* an offloaded read in fibers mode, until main writes */
  return NULL;
}

static void* napper(void* arg) {
  (void)arg;
  usleep(50000); /* queued behind the spinner: its worker is handed to a new OS thread */
  return NULL;
}

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "gonet";
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  if (!strcmp(what, "gonet")) {
    /* an invalid (non-NULL) iovec on the netpoller path: gonet reads it and faults */
    struct msghdr m = {0};
    m.msg_iov = (struct iovec*)0x10;
    m.msg_iovlen = 1;
    write(sv[1], "x", 1);
    recvmsg(sv[0], &m, MSG_WAITALL);
  } else if (!strcmp(what, "program")) {
    *(volatile int*)0x10 = 1;
  } else if (!strcmp(what, "own")) {
    signal(SIGSEGV, own);
    *(volatile int*)0x10 = 1;
  } else if (!strcmp(what, "hold")) {
    pipe(hold_pipe);
    spin_seconds = 0.6;
    pthread_t p, a, n;
    pthread_create(&p, NULL, poller, NULL);
    pthread_create(&a, NULL, spin, NULL);
    while (!spinning) usleep(1000);
    pthread_create(&n, NULL, napper, NULL);
    pthread_join(n, NULL);
    pthread_join(a, NULL);
    puts("ready");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    write(hold_pipe[1], "x", 1);
    pthread_join(p, NULL);
    return 0;
  } else if (!strcmp(what, "thread_kinds")) {
    static const int kinds[] = {SIGFPE, SIGILL, SIGBUS, SIGTRAP, SIGABRT};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
      struct sigaction sa = {0};
      sa.sa_sigaction = on_kind;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&sa.sa_mask);
      sigaction(kinds[i], &sa, NULL);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t a, b;
    pthread_create(&a, NULL, spin, NULL);
    while (!spinning) usleep(1000);
    pthread_create(&b, NULL, fault_kinds, NULL);
    pthread_join(b, NULL);
    pthread_join(a, NULL);
    puts("all caught");
    return 0;
  } else if (!strncmp(what, "thread_", 7)) {
    if (!strcmp(what, "thread_own") || !strcmp(what, "thread_alt")) {
      struct sigaction sa = {0};
      sa.sa_handler = on_alt;
      sa.sa_flags = SA_ONSTACK;
      sigemptyset(&sa.sa_mask);
      sigaction(SIGSEGV, &sa, NULL);
    }
    pthread_t a, b;
    if (!strcmp(what, "thread_alt")) {
      pthread_create(&b, NULL, fault, (void*)what);
      while (!alt_ready) usleep(1000);
      pthread_create(&a, NULL, spin, NULL);
    } else {
      pthread_create(&a, NULL, spin, NULL);
      while (!spinning) usleep(1000);
      pthread_create(&b, NULL, fault, (void*)what);
    }
    pthread_join(b, NULL);
    pthread_join(a, NULL);
  }
  puts("no fault");
  return 0;
}
