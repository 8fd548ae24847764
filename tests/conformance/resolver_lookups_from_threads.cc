// The resolver from many threads at once: getaddrinfo, getnameinfo, gethostbyname_r,
// gethostbyname2_r and gethostbyaddr_r give glibc's own answers (here from /etc/hosts and numeric
// forms, so no DNS server is needed) and errors. Issue 13: in fibers mode each lookup held its
// worker's OS thread for as long as the DNS server took; now it runs on an offload helper.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <atomic>
#include <thread>
#include <vector>

#include "transcript.h"

using namespace conf;

namespace {

void Lookups(int i, bool say) {
  addrinfo hints = {};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int r = getaddrinfo("127.0.0.1", "8080", &hints, &res);
  char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
  if (r == 0) {
    r = getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
    freeaddrinfo(res);
  }
  if (say) Say("thread %d: getaddrinfo+getnameinfo -> %d %s:%s", i, r, host, serv);
  int bad = getaddrinfo("127.0.0.1", "not-a-port", &hints, &res);
  if (say) Say("thread %d: getaddrinfo(bad numeric service) -> %s", i, gai_strerror(bad));

  hostent he, *result = nullptr;
  char buf[4096];
  int herr = 0;
  r = gethostbyname_r("127.0.0.1", &he, buf, sizeof buf, &result, &herr);
  char a[INET_ADDRSTRLEN] = "";
  if (r == 0 && result != nullptr) inet_ntop(AF_INET, result->h_addr_list[0], a, sizeof a);
  if (say) Say("thread %d: gethostbyname_r -> %d %s", i, r, a);
  r = gethostbyname2_r("127.0.0.1", AF_INET, &he, buf, sizeof buf, &result, &herr);
  if (say) Say("thread %d: gethostbyname2_r -> %d found %s", i, r, YesNo(result != nullptr));
  in_addr lo = {htonl(INADDR_LOOPBACK)};
  r = gethostbyaddr_r(&lo, sizeof lo, AF_INET, &he, buf, sizeof buf, &result, &herr);
  if (say)
    Say("thread %d: gethostbyaddr_r(127.0.0.1) -> %d found %s", i, r, YesNo(result != nullptr));
  r = gethostbyname_r("127.0.0.1", &he, buf, 8, &result, &herr);
  if (say) Say("thread %d: gethostbyname_r(8-byte buffer) -> %s", i, ErrnoName(r));
}

}  // namespace

int main() {
  alarm(120);
  Lookups(0, true);  // the main thread
  std::thread one([] { Lookups(1, true); });
  one.join();
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      Lookups(i + 2, false);
      done.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  Say("50 threads looked up concurrently -> %d done", done.load());
  return 0;
}
