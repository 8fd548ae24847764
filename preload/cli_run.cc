#include "preload/cli_run.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/duration.h"
#include "core/faults/fault_spec.h"
#include "core/launch/launch_check.h"
#include "preload/cli_preload.h"

namespace gonet::cli {
namespace {

constexpr int kExitUsage = core::kExitRefused;
constexpr long kMaxWorkers = 4096;

const char kRunUsage[] =
    R"(usage: gonet run [OPTIONS] [--] PROGRAM [ARGS...]

Runs PROGRAM with libgonet.so preloaded. Every option is checked before PROGRAM starts;
a bad value prints one line on stderr and exits 2.

options:
  --mode MODE              threads (default): each thread parks on its own;
                           fibers: pthreads become fibers on a few worker threads (M:N);
                           passthrough: interpose but never park (stats and faults only)
  --read-timeout D         a blocking read/recv with no data for D fails with EAGAIN,
                           as if the program had set SO_RCVTIMEO (its own setting wins)
  --write-timeout D        a blocking write/send stuck for D returns a partial count or
                           EAGAIN, as with SO_SNDTIMEO (the program's own setting wins)
  --connect-timeout D      a blocking connect not done after D fails with EINPROGRESS
                           (D: Go syntax, e.g. 500ms, 30s, 2m, 1h30m, 1.5s; 0 = no timeout)
  --stats                  print a summary of gonet's counters on stderr at exit
  --fault SPEC             inject a socket fault; repeatable. SPEC is
                             OP:ERRNO[:p=PROB|:n=COUNT|:after=K][:port=PORT]
                             OP:delay=DURATION[:p=PROB|:n=COUNT|:after=K][:port=PORT]
                           OP: socket, connect, accept, read (recv family), write (send
                           family), close; ERRNO: a name such as ECONNREFUSED, ECONNRESET,
                           ETIMEDOUT, EPIPE, EMFILE; p= probability 0..1, n= the first COUNT
                           matching calls, after= every call after the first K; port= the peer
                           port (connect), local port (accept), either (read, write, close)
  --fault-seed N           seed for p= draws (same seed, same faults)
  --workers N              worker threads in fibers mode (default: one per core)
  --lib PATH               libgonet.so to preload (default: $GONET_LIB, else next to the
                           gonet executable, else ../lib/gonet/ relative to it)
  -v, --verbose            print the environment changes and the command before exec
  -h, --help               this text

The options become environment variables that libgonet.so reads (GONET_MODE, GONET_STATS,
GONET_READ_TIMEOUT, GONET_WRITE_TIMEOUT, GONET_CONNECT_TIMEOUT, GONET_FAULT (specs joined
by ';'), GONET_FAULT_SEED, GONET_WORKERS); ones already in the environment are kept unless an
option overrides them, and are checked too. libgonet.so is put first in LD_PRELOAD.

gonet refuses programs LD_PRELOAD cannot reach: static executables, setuid/setgid programs
and programs with file capabilities. A #! script is fine if its interpreter is.

examples:
  gonet run -- ./daemon --port 8080
  gonet run --mode fibers --stats -- ./thread_per_connection_server
  gonet run --read-timeout 30s --connect-timeout 5s -- python3 server.py
  gonet run --fault 'connect:ECONNREFUSED:p=0.1' --fault-seed 7 -- ./client
  gonet run --fault 'read:ECONNRESET:after=3:port=6379' --fault 'write:delay=50ms' -- ./app

exit status: PROGRAM's; 2 for a refused option or program; 126 if PROGRAM cannot be
executed; 127 if it is not found.
)";

// Options that take a value, so the argument scan knows the next word is not PROGRAM.
constexpr std::string_view kValueOptions[] = {
    "--mode",  "--read-timeout", "--write-timeout", "--connect-timeout",
    "--fault", "--fault-seed",   "--workers",       "--lib"};

int Fail(const char* format, ...) __attribute__((format(printf, 1, 2)));
int Fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  fputs("gonet run: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  return kExitUsage;
}

// Options that take no value.
constexpr std::string_view kFlagOptions[] = {"--stats", "--verbose", "-v", "--help", "-h"};

// SplitArgs separates gonet's options from PROGRAM ARGS: at "--", or at the first word that is
// neither an option nor an option's value. Returns the index where PROGRAM starts (== argc if
// none) and sets *options_end to the end of the option words. An unknown option or a missing
// value is reported in *problem (in ASCII; cxxopts' own messages use typographic quotes).
int SplitArgs(int argc, char** argv, int* options_end, std::string* problem) {
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      *options_end = i;
      return i + 1;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      *options_end = i;
      return i;
    }
    std::string_view name = arg.substr(0, arg.find('='));
    bool known = false;
    for (std::string_view opt : kFlagOptions) known = known || name == opt;
    for (std::string_view opt : kValueOptions) {
      if (name != opt) continue;
      known = true;
      if (name != arg) continue;  // "--mode=fibers"
      if (i + 1 >= argc && problem->empty()) *problem = std::string(arg) + " needs a value";
      ++i;  // "--mode fibers": the value is not PROGRAM
    }
    if (!known && problem->empty()) *problem = "unknown option " + std::string(arg);
  }
  *options_end = argc;
  return argc;
}

// Setting is one GONET_* variable: from its option when given, else inherited, then checked.
struct Setting {
  Setting(const char* var_name, const char* option_name) : var(var_name), option(option_name) {}
  const char* var;
  const char* option;  // e.g. "--read-timeout", to name it in messages
  std::string value;
  bool from_option = false;
  bool present = false;  // set by the option or (non-empty) in the environment
};

bool ParseWorkers(std::string_view s, long* out) {
  if (s.empty() || s.size() > 6) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return v >= 1 && v <= kMaxWorkers;
}

// Checks one setting; returns an empty string when the value is good, else the problem.
std::string Check(const Setting& s) {
  std::string_view var = s.var;
  std::string_view v = s.value;
  if (var == "GONET_MODE") {
    if (v == "threads" || v == "fibers" || v == "passthrough") return {};
    return "bad mode \"" + s.value + "\" (want threads, fibers or passthrough)";
  }
  if (var == "GONET_READ_TIMEOUT" || var == "GONET_WRITE_TIMEOUT" ||
      var == "GONET_CONNECT_TIMEOUT") {
    core::DurationResult d = core::ParseDuration(v);
    return d.ok() ? std::string() : d.error.message();
  }
  if (var == "GONET_FAULT") {
    core::FaultSpecResult f = core::ParseFaultSpecs(v);
    return f.ok() ? std::string() : f.error.message();
  }
  if (var == "GONET_FAULT_SEED") {
    uint64_t seed = 0;
    core::ParseError e = core::ParseFaultSeed(v, &seed);
    return e.failed() ? e.message() : std::string();
  }
  if (var == "GONET_WORKERS") {
    long n = 0;
    if (ParseWorkers(v, &n)) return {};
    return "bad worker count \"" + s.value + "\" (want an integer from 1 to " +
           std::to_string(kMaxWorkers) + ")";
  }
  return {};
}

// The settings `gonet run` turns into GONET_* variables, in the order they are checked.
struct Settings {
  Setting mode{"GONET_MODE", "--mode"};
  Setting read_timeout{"GONET_READ_TIMEOUT", "--read-timeout"};
  Setting write_timeout{"GONET_WRITE_TIMEOUT", "--write-timeout"};
  Setting connect_timeout{"GONET_CONNECT_TIMEOUT", "--connect-timeout"};
  Setting stats{"GONET_STATS", "--stats"};
  Setting fault{"GONET_FAULT", "--fault"};
  Setting fault_seed{"GONET_FAULT_SEED", "--fault-seed"};
  Setting workers{"GONET_WORKERS", "--workers"};
  Setting* all[8] = {&mode,  &read_timeout, &write_timeout, &connect_timeout,
                     &stats, &fault,        &fault_seed,    &workers};
};

cxxopts::Options RunOptions() {
  cxxopts::Options options("gonet run");
  // clang-format off
  options.add_options()
      ("mode", "", cxxopts::value<std::string>())
      ("read-timeout", "", cxxopts::value<std::string>())
      ("write-timeout", "", cxxopts::value<std::string>())
      ("connect-timeout", "", cxxopts::value<std::string>())
      ("stats", "")
      ("fault", "", cxxopts::value<std::vector<std::string>>())
      ("fault-seed", "", cxxopts::value<std::string>())
      ("workers", "", cxxopts::value<std::string>())
      ("lib", "", cxxopts::value<std::string>())
      ("v,verbose", "")
      ("h,help", "");
  // clang-format on
  return options;
}

// Each --fault is checked on its own first, so the message names the argument at fault. Returns
// 0 with every spec joined by ';' in *joined, or the exit status after the message.
int JoinFaultOptions(const cxxopts::ParseResult& parsed, std::string* joined) {
  if (!parsed.count("fault")) return 0;
  for (const std::string& spec : parsed["fault"].as<std::vector<std::string>>()) {
    if (spec.find(';') == std::string::npos) {
      core::FaultRule rule;
      core::ParseError e = core::ParseFaultRule(spec, &rule);
      if (e.failed()) return Fail("--fault '%s': %s", spec.c_str(), e.message());
    }
    if (!joined->empty()) *joined += ';';
    *joined += spec;
  }
  return 0;
}

// Fills each setting from its option, else from the environment, and checks it. Returns 0 or the
// exit status after the message (naming the option, or the inherited variable).
int ResolveSettings(const cxxopts::ParseResult& parsed, const std::string& faults,
                    Settings* settings) {
  for (Setting* s : settings->all) {
    std::string key = s->option + 2;
    if (s == &settings->stats) {
      if (parsed.count(key)) s->value = "1", s->from_option = true;
    } else if (s == &settings->fault) {
      if (!faults.empty()) s->value = faults, s->from_option = true;
    } else if (parsed.count(key)) {
      s->value = parsed[key].as<std::string>();
      s->from_option = true;
    }
    // The runtime treats an empty variable as unset; so does the check.
    const char* inherited = getenv(s->var);
    bool inherits = !s->from_option && inherited != nullptr && *inherited != '\0';
    if (inherits) s->value = inherited;
    s->present = s->from_option || inherits;
    if (!s->present) continue;
    std::string problem = Check(*s);
    if (problem.empty()) continue;
    if (s->from_option) {
      return Fail("%s %s: %s", s->option, s->value.c_str(), problem.c_str());
    }
    return Fail("%s=%s (from the environment): %s", s->var, s->value.c_str(), problem.c_str());
  }
  if (settings->workers.from_option &&
      (!settings->mode.present || settings->mode.value != "fibers")) {
    fprintf(stderr, "gonet run: note: --workers only matters with --mode fibers\n");
  }
  return 0;
}

// Sets the environment and execs the program (argv[program] resolved to path). Returns only on
// failure, with the exit status execvp's callers expect.
int ExecProgram(const Settings& settings, const std::string& lib_path, const char* path,
                char** argv, int argc, int program, bool verbose) {
  std::string preload = PrependPreload(lib_path, getenv("LD_PRELOAD"));
  for (const Setting* s : settings.all) {
    if (!s->from_option) continue;
    setenv(s->var, s->value.c_str(), 1);
    if (verbose) fprintf(stderr, "gonet run: %s=%s\n", s->var, s->value.c_str());
  }
  setenv("LD_PRELOAD", preload.c_str(), 1);
  if (verbose) {
    fprintf(stderr, "gonet run: LD_PRELOAD=%s\ngonet run: exec %s", preload.c_str(), path);
    for (int i = program + 1; i < argc; ++i) fprintf(stderr, " %s", argv[i]);
    fputc('\n', stderr);
  }
  fflush(stdout);
  fflush(stderr);

  char** program_argv = argv + program;  // argv is NULL-terminated, like main's
  execv(path, program_argv);
  int err = errno;
  if (err == ENOEXEC) {
    // Neither ELF nor "#!": hand it to /bin/sh, as execvp does (CheckPreloadable judged
    // /bin/sh for it).
    std::vector<char*> sh_argv = {const_cast<char*>("/bin/sh"), const_cast<char*>(path)};
    for (int i = program + 1; i < argc; ++i) sh_argv.push_back(argv[i]);
    sh_argv.push_back(nullptr);
    execv("/bin/sh", sh_argv.data());
    err = errno;
  }
  fprintf(stderr, "gonet run: exec %s: %s\n", path, strerror(err));
  return err == ENOENT ? core::kExitNotFound : core::kExitNotExecutable;
}

}  // namespace

int RunCommand(int argc, char** argv) {
  int options_end = 0;
  std::string problem;
  int program = SplitArgs(argc, argv, &options_end, &problem);
  if (!problem.empty()) return Fail("%s (see gonet run --help)", problem.c_str());

  cxxopts::Options options = RunOptions();
  std::vector<const char*> words = {"gonet run"};
  for (int i = 0; i < options_end; ++i) words.push_back(argv[i]);
  cxxopts::ParseResult parsed;
  try {
    parsed = options.parse(static_cast<int>(words.size()), words.data());
  } catch (const cxxopts::exceptions::exception& e) {
    return Fail("%s (see gonet run --help)", e.what());
  }
  if (parsed.count("help")) {
    fputs(kRunUsage, stdout);
    return 0;
  }
  if (program >= argc)
    return Fail("no program given (usage: gonet run [OPTIONS] -- PROGRAM ARGS...)");

  std::string faults;
  if (int status = JoinFaultOptions(parsed, &faults); status != 0) return status;
  Settings settings;
  if (int status = ResolveSettings(parsed, faults, &settings); status != 0) return status;

  std::string lib_option = parsed.count("lib") ? parsed["lib"].as<std::string>() : "";
  LibraryLookup lib =
      FindLibrary(lib_option.empty() ? nullptr : lib_option.c_str(), getenv("GONET_LIB"));
  if (!lib.error.empty()) return Fail("%s", lib.error.c_str());

  core::ResolvedProgram resolved = core::ResolveProgram(argv[program], getenv("PATH"));
  if (!resolved.ok()) {
    fprintf(stderr, "gonet run: %s\n", resolved.error.message());
    return resolved.exit_code;
  }
  core::ParseError refusal = core::CheckPreloadable(resolved.path);
  if (refusal.failed()) return Fail("%s", refusal.message());
  return ExecProgram(settings, lib.path, resolved.path, argv, argc, program,
                     parsed.count("verbose") > 0);
}

}  // namespace gonet::cli
