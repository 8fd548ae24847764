/* tls_switch: the cost of one fiber switch with TLS_BYTES bytes of the program's own
   thread-local storage (issue 14). Two threads call sched_yield ITERS times each; under
   GONET_MODE=fibers GONET_WORKERS=1 every call is one switch to the other fiber, which saves
   and loads the program's TLS (core/fibers/fiber_tls.h). Prints nanoseconds per switch.
   Built twice: tls_switch_0 (no TLS of its own) and tls_switch_256 (256 bytes). */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>

#define ITERS 1000000

#if TLS_BYTES > 0
__thread unsigned char tls_state[TLS_BYTES];
#endif

/* Returns non-NULL if this thread's copy saw only its own increments. */
static void* spin(void* arg) {
  for (int i = 0; i < ITERS; ++i) {
#if TLS_BYTES > 0
    tls_state[i % TLS_BYTES]++;
#endif
    sched_yield();
  }
#if TLS_BYTES > 0
  for (int k = 0; k < TLS_BYTES; ++k) {
    if (tls_state[k] != (unsigned char)((ITERS / TLS_BYTES) + (k < ITERS % TLS_BYTES))) {
      return NULL;
    }
  }
#endif
  return arg;
}

int main(void) {
  struct timespec a, b;
  pthread_t t1, t2;
  void *own1, *own2;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pthread_create(&t1, NULL, spin, &a);
  pthread_create(&t2, NULL, spin, &b);
  pthread_join(t1, &own1);
  pthread_join(t2, &own2);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%d bytes of TLS: %.1f ns per switch (copies per thread: %s)\n", TLS_BYTES,
         ns / (2.0 * ITERS), own1 && own2 ? "own" : "shared");
  return 0;
}
