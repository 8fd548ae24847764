// go_echo: the reference the benchmark compares gonet against, a goroutine-per-connection echo
// server written the way Go programs are written: blocking-style code on the runtime's network
// poller, which is exactly what gonet brings to C programs.
//
// The copy buffer is 16 KiB, the same as examples/echo_threads.cc, so that memory per
// connection compares the runtimes rather than the buffer sizes. GOMAXPROCS is left to its
// default (the CPUs in the affinity mask: 1 under `taskset -c 0`).
//
// With -deep N, a connection's first message first runs N levels of a call with a 1 KiB local
// array, as examples/deep_idle_echo.cc does (the benchmark's idle-after-a-deep-request case): the
// goroutine's stack grows for it, and Go's GC shrinks it again once the goroutine idles.
//
// Prints "listening on PORT" once ready; stops on SIGTERM/SIGINT or after -lifetime.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// deepCall writes and reads back a 1 KiB frame per level, so every level's stack is touched.
//
//go:noinline
func deepCall(level int) int {
	var frame [1024]byte
	for i := range frame {
		frame[i] = byte(level ^ i)
	}
	sum := 0
	if level > 1 {
		sum = deepCall(level - 1)
	}
	for _, b := range frame {
		sum += int(b)
	}
	return sum
}

var deep = flag.Int("deep", 0, "levels of a 1 KiB-per-level call run on each connection's first message")

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16*1024)
	first := true
	for {
		n, err := c.Read(buf)
		if n > 0 && first && *deep > 0 {
			first = false
			if deepCall(*deep) == 1 {
				fmt.Fprintln(os.Stderr, "deep call: unlikely sum")
			}
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on (0 = pick a free port)")
	lifetime := flag.Duration("lifetime", 0, "exit after this long (0 = run until SIGTERM/SIGINT)")
	flag.Parse()

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		if *lifetime > 0 {
			select {
			case <-stop:
			case <-time.After(*lifetime):
			}
		} else {
			<-stop
		}
		os.Exit(0)
	}()

	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of fds, most likely: back off instead of spinning, as net/http does.
			fmt.Fprintln(os.Stderr, "go_echo: accept:", err)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}
