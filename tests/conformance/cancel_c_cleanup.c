/* cancel_c_cleanup.c: the C half of cancel_at_every_cancellation_point. Compiled as C without
 * -fexceptions, so pthread_cleanup_push/pop are glibc's C macros: a setjmp buffer registered with
 * __pthread_register_cancel and run by __pthread_unwind_next, not a C++ destructor. */
#include <pthread.h>
#include <stddef.h>

#include "cancel_c_cleanup.h"

struct Frame {
  conf_note_fn note;
  const char* name;
};

static void RunHandler(void* arg) {
  struct Frame* f = (struct Frame*)arg;
  f->note(f->name);
}

void conf_c_with_cleanup(conf_note_fn note, const char* name, void (*body)(void*), void* arg) {
  struct Frame f = {note, name};
  pthread_cleanup_push(RunHandler, &f);
  body(arg);
  pthread_cleanup_pop(0);
}

void conf_c_exit_with_cleanup(conf_note_fn note, const char* name, void* value) {
  struct Frame f = {note, name};
  pthread_cleanup_push(RunHandler, &f);
  pthread_exit(value);
  pthread_cleanup_pop(0);
}

struct CondFrame {
  conf_note_fn note;
  pthread_mutex_t* mu;
};

/* The classic handler: the cancelled wait took the mutex back, so the handler unlocks it. */
static void UnlockHandler(void* arg) {
  struct CondFrame* f = (struct CondFrame*)arg;
  f->note(pthread_mutex_unlock(f->mu) == 0 ? "C handler: mutex held, unlocked"
                                           : "C handler: mutex NOT held");
}

void conf_c_cond_wait_forever(conf_note_fn note, pthread_cond_t* cv, pthread_mutex_t* mu,
                              void (*announce)(void)) {
  struct CondFrame f = {note, mu};
  pthread_mutex_lock(mu);
  pthread_cleanup_push(UnlockHandler, &f);
  announce();
  for (;;) pthread_cond_wait(cv, mu);
  pthread_cleanup_pop(1);
}
