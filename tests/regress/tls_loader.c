/* A library that dlopens on behalf of tls_probe (tls_probe dlopen-via-lib): a caller that is not
   the program, so a name with $ORIGIN means this library's directory, which only glibc, called
   with this library's return address, can expand. */
#include <dlfcn.h>

void* tls_loader_open(const char* name, int flags) {
  void* handle = dlopen(name, flags);
  __asm__ volatile("" ::: "memory"); /* no tail call: dlopen must see this library as caller */
  return handle;
}
