// The Go baseline for `cargo xtask compare`: gorilla/websocket's own
// idiom (its chat example): per connection a reader goroutine whose read
// deadline every pong extends, and a writer goroutine whose ticker sends a
// ping every interval under a write deadline.
//
// Usage: server -port 0 -interval-ms 5000 -timeout-ms 10000
// Prints "listening on 127.0.0.1:PORT" once bound.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

func serve(interval, timeout time.Duration) http.HandlerFunc {
	// Silence allowed before the connection is closed: a ping's interval
	// plus the time its pong may take.
	wait := interval + timeout
	return func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		done := make(chan struct{})
		// Writer: a ping every interval.
		go func() {
			ticker := time.NewTicker(interval)
			defer ticker.Stop()
			for {
				select {
				case <-ticker.C:
					deadline := time.Now().Add(timeout)
					if err := conn.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
						conn.Close()
						return
					}
				case <-done:
					return
				}
			}
		}()
		// Reader: every frame, pongs included, extends the deadline.
		conn.SetReadDeadline(time.Now().Add(wait))
		conn.SetPongHandler(func(string) error {
			return conn.SetReadDeadline(time.Now().Add(wait))
		})
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				break
			}
			conn.SetReadDeadline(time.Now().Add(wait))
		}
		close(done)
		conn.Close()
	}
}

func main() {
	port := flag.Int("port", 9001, "port on 127.0.0.1 (0: any free one)")
	intervalMs := flag.Int("interval-ms", 5000, "ping every MS milliseconds")
	timeoutMs := flag.Int("timeout-ms", 10000, "close after interval + MS of silence")
	maxSeconds := flag.Int("max-seconds", 3600, "exit after S seconds")
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	go func() {
		time.Sleep(time.Duration(*maxSeconds) * time.Second)
		os.Exit(0)
	}()
	interval := time.Duration(*intervalMs) * time.Millisecond
	timeout := time.Duration(*timeoutMs) * time.Millisecond
	http.Serve(listener, serve(interval, timeout))
}
