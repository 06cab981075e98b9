// A vigil client in Go, on gorilla/websocket.
//
// Its own keepalive is gorilla's idiom: ping every -keepalive and let each
// pong extend the read deadline, so a server silent for two keepalives
// fails the read; the server pings this client when it has been silent for
// the server's interval (gorilla answers with a pong). Both run at once.
//
//	go get github.com/gorilla/websocket   # or Debian's golang-github-gorilla-websocket-dev
//	go run main.go -url ws://127.0.0.1:8080/ws -channel lobby
//
// Prints one line per event: `welcome`, `joined`, `message`, `error`,
// `keepalive` (a pong to our keepalive ping), `pings` (with -ping-rate),
// `silent`, `closed`.
// -silent: after joining, freeze like a hung process: nothing read or
// written, the socket left open; the server closes it within its bound.
// -ping-rate N: also send N pings a second and count the server's pongs.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

type event struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id"`
	User      string          `json:"user"`
	From      string          `json:"from"`
	Data      json.RawMessage `json:"data"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Heartbeat struct {
		IntervalMs int `json:"interval_ms"`
		TimeoutMs  int `json:"timeout_ms"`
	} `json:"heartbeat"`
	Presence struct {
		Members []json.RawMessage `json:"members"`
	} `json:"presence"`
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "the server's WebSocket URL")
	channel := flag.String("channel", "lobby", "the channel to join")
	keepalive := flag.Duration("keepalive", 20*time.Second, "time between our pings, and for each pong")
	pingRate := flag.Float64("ping-rate", 0, "extra pings a second (0: none)")
	silent := flag.Bool("silent", false, "after joining, freeze with the socket open")
	flag.Parse()
	if *keepalive <= 0 || *pingRate < 0 {
		fmt.Fprintln(os.Stderr, "-keepalive must be positive and -ping-rate not negative")
		os.Exit(2)
	}
	conn, _, err := websocket.DefaultDialer.Dial(*url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer conn.Close()

	var pingedAt atomic.Int64
	var pongs atomic.Int64
	conn.SetReadDeadline(time.Now().Add(2 * *keepalive))
	conn.SetPongHandler(func(data string) error {
		if data == "keepalive" {
			rtt := time.Since(time.Unix(0, pingedAt.Load()))
			fmt.Printf("keepalive rtt_ms=%.1f\n", float64(rtt.Microseconds())/1000)
		} else {
			pongs.Add(1)
		}
		return conn.SetReadDeadline(time.Now().Add(2 * *keepalive))
	})
	quiet := make(chan struct{}) // closed when going silent: no more pings
	ping := func(data string) bool {
		select {
		case <-quiet:
			return false
		default:
			deadline := time.Now().Add(*keepalive)
			return conn.WriteControl(websocket.PingMessage, []byte(data), deadline) == nil
		}
	}
	go func() {
		for range time.Tick(*keepalive) {
			pingedAt.Store(time.Now().UnixNano())
			if !ping("keepalive") {
				return
			}
		}
	}()
	if *pingRate > 0 {
		go func() {
			sent := 0
			report := time.Now().Add(time.Second)
			for range time.Tick(time.Duration(float64(time.Second) / *pingRate)) {
				if !ping(fmt.Sprintf("p%d", sent)) {
					return
				}
				sent++
				if time.Now().After(report) {
					fmt.Printf("pings sent=%d pongs=%d\n", sent, pongs.Load())
					report = report.Add(time.Second)
				}
			}
		}()
	}
	send := func(request map[string]any) {
		if err := conn.WriteJSON(request); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
	}

	for {
		var ev event
		if err := conn.ReadJSON(&ev); err != nil {
			var closed *websocket.CloseError
			if errors.As(err, &closed) {
				fmt.Printf("closed %d %s\n", closed.Code, closed.Text)
				return
			}
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		switch {
		case ev.Type == "welcome":
			fmt.Printf("welcome %s interval_ms=%d timeout_ms=%d\n",
				ev.User, ev.Heartbeat.IntervalMs, ev.Heartbeat.TimeoutMs)
			send(map[string]any{"op": "join", "channel": *channel, "id": 1})
		case ev.Type == "reply" && string(ev.ID) == "1":
			fmt.Printf("joined %s members=%d\n", *channel, len(ev.Presence.Members))
			send(map[string]any{"op": "publish", "channel": *channel,
				"data": map[string]string{"text": "hello from go"}, "id": 2})
			if *silent {
				fmt.Println("silent")
				close(quiet)
				time.Sleep(time.Hour) // nothing reads, so no pong answers the server
			}
		case ev.Type == "message":
			fmt.Printf("message %s %s\n", ev.From, ev.Data)
		case ev.Type == "error":
			fmt.Printf("error %s %s\n", ev.Code, ev.Message)
		}
	}
}
