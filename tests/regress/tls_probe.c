/* A program with application thread-local storage, for tls_warning_test.py (issues 5, 14).

     tls_probe          prints "ok"
     tls_probe fork     forks a child that exits at once (no exec), then prints "ok"
     tls_probe exec     forks a child that execs this program again, then prints "ok"
     tls_probe share    prints the __thread value a thread sees after parking in recv while
                        another thread set its own copy: 1 with a copy per thread (natively,
                        threads mode, fibers mode); 2 when both are fibers of one worker that
                        share one copy (fibers mode with GONET_FIBER_TLS=shared).
     tls_probe dlopen LIB
                        dlopens LIB (a name, or a path), writes "tls_probe: dlopen returned" on
                        stderr, starts and joins one thread, prints "ok"
     tls_probe dlopen-only LIB
                        the same without the thread
     tls_probe dlopen-via-lib LOADER LIB [no-thread]
                        as dlopen LIB (or dlopen-only LIB, with no-thread), but the dlopen is
                        made by the library LOADER (tls_loader.c, loaded by path)
     tls_probe dlopen-share LIB
                        dlopens LIB (the conformance suite's thread-local library), then as
                        share with the library's thread-local (conf_lib_set, conf_lib_get):
                        prints "library thread-local value after park: N"

   Built twice: tls_probe, and tls_probe_runpath with a RUNPATH naming the directory of the
   library the tests dlopen by name (its search path is then not gonet's own). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Not static: a call the compiler cannot see into (recv) may change it, so it is reloaded. */
__thread int tls_probe_value;

static void set_own(int v) { tls_probe_value = v; }
static int get_own(void) { return tls_probe_value; }
static void (*set_value)(int) = set_own;
static int (*get_value)(void) = get_own;

static int ready[2]; /* first -> second: "my value is set" */
static int data[2];  /* second -> first: "mine is set too" */
static int seen_after_park;

static void* first(void* arg) {
  char c = 'r';
  (void)arg;
  set_value(1);
  if (send(ready[0], &c, 1, 0) != 1) return NULL;
  if (recv(data[1], &c, 1, 0) != 1) return NULL; /* parks until the second thread sends */
  seen_after_park = get_value();
  return NULL;
}

static void* second(void* arg) {
  char c;
  (void)arg;
  if (recv(ready[1], &c, 1, 0) != 1) return NULL; /* the first thread has set its value */
  set_value(2);
  send(data[0], &c, 1, 0);
  return NULL;
}

static int share(const char* what) {
  pthread_t a, b;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, ready) != 0) return 1;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, data) != 0) return 1;
  if (pthread_create(&a, NULL, first, NULL) != 0) return 1;
  if (pthread_create(&b, NULL, second, NULL) != 0) return 1;
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  printf("%sthread-local value after park: %d\n", what, seen_after_park);
  return 0;
}

static int child_then_ok(const char* self, int exec_self) {
  int status;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    if (exec_self) execl("/proc/self/exe", self, (char*)NULL);
    _exit(0);
  }
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return 1;
  }
  printf("ok\n");
  return 0;
}

static void* nothing(void* arg) { return arg; }

static void* (*open_lib)(const char*, int) = dlopen;

static int dlopen_then_thread(const char* lib, int thread) {
  pthread_t t;
  if (open_lib(lib, RTLD_NOW) == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  fprintf(stderr, "tls_probe: dlopen returned\n"); /* unbuffered: in order with gonet's lines */
  if (thread) {
    if (pthread_create(&t, NULL, nothing, NULL) != 0) return 1;
    pthread_join(t, NULL);
  }
  printf("ok\n");
  return 0;
}

static int dlopen_then_share(const char* lib) {
  void* h = dlopen(lib, RTLD_NOW);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  set_value = (void (*)(int))dlsym(h, "conf_lib_set");
  get_value = (int (*)(void))dlsym(h, "conf_lib_get");
  if (set_value == NULL || get_value == NULL) return 1;
  return share("library ");
}

int main(int argc, char** argv) {
  tls_probe_value = 0;
  if (argc > 2 && strcmp(argv[1], "dlopen") == 0) return dlopen_then_thread(argv[2], 1);
  if (argc > 2 && strcmp(argv[1], "dlopen-only") == 0) return dlopen_then_thread(argv[2], 0);
  if (argc > 3 && strcmp(argv[1], "dlopen-via-lib") == 0) {
    void* loader = dlopen(argv[2], RTLD_NOW);
    open_lib = loader != NULL ? (void* (*)(const char*, int))dlsym(loader, "tls_loader_open") : NULL;
    if (open_lib == NULL) return 1;
    return dlopen_then_thread(argv[3], argc < 5 || strcmp(argv[4], "no-thread") != 0);
  }
  if (argc > 2 && strcmp(argv[1], "dlopen-share") == 0) return dlopen_then_share(argv[2]);
  if (argc > 1 && strcmp(argv[1], "share") == 0) return share("");
  if (argc > 1 && strcmp(argv[1], "fork") == 0) return child_then_ok(argv[0], 0);
  if (argc > 1 && strcmp(argv[1], "exec") == 0) return child_then_ok(argv[0], 1);
  printf("ok\n");
  return 0;
}
