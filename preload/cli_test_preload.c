/* A stand-in for libgonet.so in the CLI tests, so that they prove what the launcher did
 * (LD_PRELOAD, GONET_*) without depending on the runtime being built. When
 * GONET_CLI_TEST_ANNOUNCE is set, the loader's call of this constructor is the proof that the
 * preload took effect in the process that printed it. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void Announce(void) {
  if (getenv("GONET_CLI_TEST_ANNOUNCE") != NULL) {
    fprintf(stderr, "cli-test-preload: loaded in pid %ld\n", (long)getpid());
  }
}
