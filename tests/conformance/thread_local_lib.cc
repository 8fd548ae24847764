// A library with thread-local storage, dlopen'ed by thread_locals_are_per_thread (issue 14).
#include <atomic>
#include <cstdio>

namespace {

struct Session {
  Session() : id(-1) { ++constructed; }
  ~Session() { ++destroyed; }
  int id;
  // Atomic: the scenario's threads construct and destroy theirs at the same time (a plain int lost
  // an increment natively: "3 sessions constructed, 4 destroyed").
  static std::atomic<int> constructed, destroyed;
};
std::atomic<int> Session::constructed{0};
std::atomic<int> Session::destroyed{0};

__thread int lib_value = 7;  // .tdata: every thread starts at 7
__thread char lib_buffer[64];
thread_local Session lib_session;

}  // namespace

extern "C" int conf_lib_get() { return lib_value; }
extern "C" void conf_lib_set(int v) {
  lib_value = v;
  snprintf(lib_buffer, sizeof lib_buffer, "buffer of %d", v);
  lib_session.id = v;
}
extern "C" bool conf_lib_consistent(int v) {
  char want[64];
  snprintf(want, sizeof want, "buffer of %d", v);
  for (size_t i = 0; i < sizeof want && want[i] != '\0'; ++i) {
    if (lib_buffer[i] != want[i]) return false;
  }
  return lib_value == v && lib_session.id == v;
}
extern "C" int conf_lib_constructed() { return Session::constructed; }
extern "C" int conf_lib_destroyed() { return Session::destroyed; }

// Destroyed at its thread's exit, on that thread's own copy, even after a handoff moved the thread
// (a fiber) to another OS thread: the scenario's AcrossAHandoffInTheLibrary.
struct HandoffTracked {
  ~HandoffTracked();
  long value = 0;
};
thread_local HandoffTracked lib_handoff_tracked;
bool g_handoff_dtor_on_own_copy = false;  // guarded by the scenario's joins
HandoffTracked::~HandoffTracked() {
  g_handoff_dtor_on_own_copy = this == &lib_handoff_tracked && value == 701;
}

extern "C" void conf_lib_track(long v) { lib_handoff_tracked.value = v; }
extern "C" bool conf_lib_tracked_destroyed_on_own_copy() { return g_handoff_dtor_on_own_copy; }
