/* A statically linked program for cli.refuses_static_binary: LD_PRELOAD cannot reach it. */
#include <stdio.h>

int main(void) {
  puts("static program ran");
  return 0;
}
