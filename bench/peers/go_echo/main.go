// SPDX-License-Identifier: MIT

// go_echo: the echo server a Go programmer writes with the net package, a
// goroutine per connection. build-peers.sh builds it; compare.py runs it
// with GOMAXPROCS=1 (one thread running Go code, as every other peer).
//
// Usage: go_echo --port P [--host H] [--mode echo|sink|http]
// Prints "Serving on HOST:PORT" when ready; SIGTERM ends it (default action).
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

const usage = "Usage: go_echo --port P [--host H] [--mode echo|sink|http]"
const readSize = 64 * 1024 // the read size of every other peer
const reply = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"

func usageError(msg string) {
	fmt.Fprintf(os.Stderr, "go_echo: %s\n%s\n", msg, usage)
	os.Exit(2)
}

// httpCount counts the requests ending in p; *crlf spans reads.
func httpCount(crlf *int, p []byte) int {
	const term = "\r\n\r\n"
	count := 0
	for _, b := range p {
		if b == term[*crlf] {
			*crlf++
		} else if b == '\r' {
			*crlf = 1
		} else {
			*crlf = 0
		}
		if *crlf == 4 {
			count++
			*crlf = 0
		}
	}
	return count
}

func serve(c net.Conn, mode string) {
	defer c.Close()
	buf := make([]byte, readSize)
	crlf := 0
	var replies []byte
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return
		}
		switch mode {
		case "echo":
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		case "http":
			if k := httpCount(&crlf, buf[:n]); k > 0 {
				replies = replies[:0]
				for i := 0; i < k; i++ {
					replies = append(replies, reply...)
				}
				if _, err := c.Write(replies); err != nil {
					return
				}
			}
		}
	}
}

func main() {
	host, port, mode := "127.0.0.1", -1, "echo"
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() string {
			if i+1 >= len(args) {
				usageError(a + " needs a value")
			}
			i++
			return args[i]
		}
		switch a {
		case "-h", "--help":
			fmt.Println(usage + "\n  --port P  listen on port P (0: any free port)\n" +
				"  --host H  listen on address H (default 127.0.0.1)\n  --mode M  echo (default), sink or http")
			os.Exit(0)
		case "--port":
			p, err := strconv.Atoi(value())
			if err != nil || p < 0 || p > 65535 {
				usageError("bad --port")
			}
			port = p
		case "--host":
			host = value()
		case "--mode":
			mode = value()
			if mode != "echo" && mode != "sink" && mode != "http" {
				usageError("--mode is echo, sink or http, not '" + mode + "'")
			}
		default:
			usageError("unrecognized option '" + a + "'")
		}
	}
	if port < 0 {
		usageError("--port is required")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo:", err)
		os.Exit(1)
	}
	fmt.Printf("Serving on %s:%d\n", host, l.Addr().(*net.TCPAddr).Port)
	for {
		c, err := l.Accept()
		if err != nil {
			continue // EMFILE and the like: the next accept may work
		}
		go serve(c, mode) // Go's TCPConn sets TCP_NODELAY by default
	}
}
