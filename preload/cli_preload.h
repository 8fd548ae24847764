// Where `gonet run` finds libgonet.so, and how it puts it into LD_PRELOAD.
#pragma once

#include <string>

namespace gonet::cli {

struct LibraryLookup {
  std::string path;   // absolute, when error is empty
  std::string error;  // one line, without the "gonet run: " prefix
};

// FindLibrary picks libgonet.so, first match wins:
//   1. `explicit_path` (--lib), then `env_path` (GONET_LIB): when given, it must exist, so a
//      typo is reported instead of silently falling back to another copy;
//   2. next to the gonet executable (a build tree: build/gonet beside build/libgonet.so);
//   3. <exe dir>/../GONET_INSTALL_LIBDIR/libgonet.so (an install as `cmake --install` and the
//      .deb lay it out: /usr/bin/gonet, /usr/lib/x86_64-linux-gnu/gonet/libgonet.so);
//   4. <exe dir>/../lib/gonet/libgonet.so (an install by an older build: lib/gonet/).
// The result is made absolute, since LD_PRELOAD is also read by the program's children, which
// may run in another directory.
LibraryLookup FindLibrary(const char* explicit_path, const char* env_path);

// PrependPreload returns `existing` (LD_PRELOAD's value, possibly null) with `library` first.
// Entries are split on ':' and blanks as the loader does, and any entry named libgonet.so is
// dropped so that a nested `gonet run` or a stale copy never loads the runtime twice.
std::string PrependPreload(const std::string& library, const char* existing);

}  // namespace gonet::cli
