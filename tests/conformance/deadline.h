// deadline.h: absolute deadlines for the timed waits of conformance scenarios (sem_clockwait,
// pthread_cond_clockwait, FUTEX_WAIT_BITSET...), on either clock.
#pragma once

#include <time.h>

namespace conf {

// Now on `clock`, plus seconds and milliseconds (any number of them), normalised.
inline timespec After(clockid_t clock, int seconds, long ms = 0) {
  timespec t;
  clock_gettime(clock, &t);
  t.tv_sec += seconds;
  t.tv_nsec += ms * 1000000L;
  t.tv_sec += t.tv_nsec / 1000000000L;
  t.tv_nsec %= 1000000000L;
  return t;
}

}  // namespace conf
