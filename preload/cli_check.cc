#include "preload/cli_check.h"

#include <stdlib.h>

#include <cstdio>
#include <cxxopts.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/launch/launch_check.h"
#include "core/launch/program_check.h"

namespace gonet::cli {
namespace {

constexpr int kExitCannotRun = static_cast<int>(core::Verdict::kCannotRun);

const char kCheckUsage[] =
    R"(usage: gonet check [OPTIONS] [--] PROGRAM [ARGS...]

Tells, before you try, whether and how PROGRAM can run under gonet. Nothing is started: the
program's ELF files are read (a #! script's interpreter, then every library the loader would
load for it, found as ld.so does). It reports:
  - whether LD_PRELOAD can reach it (dynamically linked; not setuid/setgid; no file
    capabilities; the same machine), as gonet run checks;
  - which call families it and its libraries import: threads, sockets, poll/epoll (what gonet
    interposes) and io_uring, signalfd (what gonet cannot see);
  - the thread-local storage fibers mode would share between the fibers of a worker;
  - a recommended mode, with the reason, and every caveat.
ARGS are accepted, so that a `gonet run` command line can be checked by changing run to
check, and are not used. Libraries loaded at run time (dlopen) are not seen.

options:
  --json                   print one JSON object instead of text
  -h, --help               this text

exit status: 0 fine; 1 it can run, with caveats (listed); 2 it cannot run under gonet (why is
printed), or a usage error.

examples:
  gonet check ./thread_per_connection_server --port 8080
  gonet check --json /usr/sbin/privoxy
)";

int Fail(const std::string& message) {
  fprintf(stderr, "gonet check: %s\n", message.c_str());
  return kExitCannotRun;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string JsonList(const std::vector<std::string>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + JsonString(list[i]);
  return out + "]";
}

const char* VerdictName(core::Verdict v) {
  switch (v) {
    case core::Verdict::kFine:
      return "fine";
    case core::Verdict::kCaveats:
      return "caveats";
    case core::Verdict::kCannotRun:
      return "cannot run";
  }
  return "?";
}

void PrintJson(const core::ProgramScan& scan, const core::Assessment& a) {
  std::string out = "{\"program\":" + JsonString(scan.program);
  out += ",\"image\":" + JsonString(scan.image);
  out += ",\"via\":" + JsonString(scan.via);
  out += ",\"verdict\":" + JsonString(VerdictName(a.verdict));
  out += ",\"exit\":" + std::to_string(static_cast<int>(a.verdict));
  out += ",\"refusal\":" + JsonString(a.refusal);
  const core::ElfFile& image = scan.objects.empty() ? core::ElfFile{} : scan.objects[0].elf;
  out += ",\"dynamic\":";
  out += image.interpreter.empty() ? "false" : "true";
  out += ",\"interpreter\":" + JsonString(image.interpreter);
  out += ",\"libraries\":[";
  for (size_t i = 1; i < scan.objects.size(); ++i) {
    out += (i > 1 ? "," : "") + JsonString(scan.objects[i].elf.path);
  }
  out += "],\"missing_libraries\":" + JsonList(scan.missing);
  out += ",\"families\":{";
  for (int f = 0; f < core::kImportFamilies; ++f) {
    const core::FamilyUse& use = a.families[f];
    out += (f ? "," : "") + JsonString(core::ImportFamilyName(static_cast<core::ImportFamily>(f)));
    out += ":{\"imported\":";
    out += use.used() ? "true" : "false";
    out += ",\"symbols\":" + JsonList(use.symbols) + ",\"objects\":" + JsonList(use.objects) + "}";
  }
  out += "},\"fiber_tls\":[";
  for (size_t i = 0; i < a.tls.size(); ++i) {
    out += (i ? "," : "") + std::string("{\"object\":") + JsonString(a.tls[i].object) +
           ",\"bytes\":" + std::to_string(a.tls[i].bytes) + "}";
  }
  out += "],\"mode\":" + JsonString(a.mode) + ",\"reason\":" + JsonString(a.reason);
  out += ",\"caveats\":" + JsonList(a.caveats) + ",\"notes\":" + JsonList(a.notes) + "}\n";
  fputs(out.c_str(), stdout);
}

void PrintText(const core::ProgramScan& scan, const core::Assessment& a) {
  printf("gonet check: %s\n", scan.program.c_str());
  if (a.verdict == core::Verdict::kCannotRun) {
    printf("  cannot run under gonet: %s\n", a.refusal.c_str());
    return;
  }
  const core::ElfFile& image = scan.objects[0].elf;
  if (!scan.via.empty()) printf("  runs as     %s, %s\n", scan.image.c_str(), scan.via.c_str());
  printf("  linked      dynamically (interpreter %s): LD_PRELOAD takes effect\n",
         image.interpreter.c_str());
  printf("  privileges  not setuid/setgid, no file capabilities\n");
  printf("  libraries   %zu loaded for it (DT_NEEDED, found as the loader would)%s\n",
         scan.objects.size() - 1, scan.missing.empty() ? "" : ", some missing (below)");
  printf("  imports\n");
  for (int f = 0; f < core::kImportFamilies; ++f) {
    const core::FamilyUse& use = a.families[f];
    const char* name = core::ImportFamilyName(static_cast<core::ImportFamily>(f));
    if (!use.used()) {
      printf("    %-11s no\n", name);
      continue;
    }
    std::string symbols, objects;
    for (size_t i = 0; i < use.symbols.size() && i < 8; ++i) {
      symbols += (i ? ", " : "") + use.symbols[i];
    }
    if (use.symbols.size() > 8) symbols += ", ...";
    for (size_t i = 0; i < use.objects.size(); ++i) objects += (i ? ", " : "") + use.objects[i];
    printf("    %-11s yes: %s (by %s)\n", name, symbols.c_str(), objects.c_str());
  }
  if (a.tls.empty()) {
    printf("  TLS         none of the program's own (fibers mode copies none per fiber)\n");
  } else {
    for (const core::TlsShare& t : a.tls) {
      printf("  TLS         %s: %llu bytes, copied per fiber in fibers mode\n", t.object.c_str(),
             static_cast<unsigned long long>(t.bytes));
    }
  }
  printf("\n  recommended: gonet run --mode %s -- %s\n", a.mode.c_str(), scan.program.c_str());
  printf("  why: it looks like %s.\n", a.reason.c_str());
  if (!a.caveats.empty()) {
    printf("\n  caveats:\n");
    for (const std::string& c : a.caveats) printf("    - %s\n", c.c_str());
  }
  if (!a.notes.empty()) {
    printf("\n  notes:\n");
    for (const std::string& n : a.notes) printf("    - %s\n", n.c_str());
  }
}

}  // namespace

int CheckCommand(int argc, char** argv) {
  // gonet's options end at "--" or at the first word that is not an option, as for run.
  int program = 0;
  std::vector<const char*> words = {"gonet check"};
  for (; program < argc; ++program) {
    std::string_view arg = argv[program];
    if (arg == "--") {
      ++program;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;
    words.push_back(argv[program]);
  }
  cxxopts::Options options("gonet check");
  options.add_options()("json", "")("h,help", "");
  cxxopts::ParseResult parsed;
  try {
    parsed = options.parse(static_cast<int>(words.size()), words.data());
  } catch (const cxxopts::exceptions::exception& e) {
    return Fail(std::string(e.what()) + " (see gonet check --help)");
  }
  if (parsed.count("help")) {
    fputs(kCheckUsage, stdout);
    return 0;
  }
  if (program >= argc) return Fail("no program given (usage: gonet check [--json] PROGRAM)");

  core::ProgramScan scan;
  core::Assessment a;
  core::ResolvedProgram resolved = core::ResolveProgram(argv[program], getenv("PATH"));
  if (!resolved.ok()) {
    scan.program = argv[program];
    a.verdict = core::Verdict::kCannotRun;
    a.refusal = resolved.error.message();
  } else {
    core::LibrarySearch search =
        core::SystemLibrarySearch(getenv("LD_LIBRARY_PATH"), "/etc/ld.so.conf");
    scan = core::ScanProgram(resolved.path, search, getenv("PATH"));
    core::ParseError refusal = core::CheckPreloadable(resolved.path);
    std::string why = refusal.message();
    // CheckPreloadable's messages start "refusing PATH: ", which suits run; check explains.
    if (why.compare(0, 9, "refusing ") == 0) why.erase(0, 9);
    a = core::Assess(scan, why);
  }
  if (parsed.count("json")) {
    PrintJson(scan, a);
  } else {
    PrintText(scan, a);
  }
  return static_cast<int>(a.verdict);
}

}  // namespace gonet::cli
