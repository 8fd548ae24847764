// cancel_c_cleanup.h: C functions that push C cleanup handlers (cancel_c_cleanup.c).
#pragma once

#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*conf_note_fn)(const char* what);
// Pushes a C cleanup handler that notes `name`, runs body(arg), pops it without running it.
void conf_c_with_cleanup(conf_note_fn note, const char* name, void (*body)(void*), void* arg);
// Pushes a C cleanup handler that notes `name`, then calls pthread_exit(value).
void conf_c_exit_with_cleanup(conf_note_fn note, const char* name, void* value);
// Locks mu, pushes a C handler that unlocks it (noting whether it was held), calls announce(),
// then waits on cv forever.
void conf_c_cond_wait_forever(conf_note_fn note, pthread_cond_t* cv, pthread_mutex_t* mu,
                              void (*announce)(void));

#ifdef __cplusplus
}
#endif
