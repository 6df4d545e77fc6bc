// Command flock-ferretdb runs FerretDB v1 embedded with its SQLite backend, as
// Flock's local MongoDB-compatible server when MONGO_URL is not set.
//
// FerretDB v1 executes an update as read, modify in Go, write back, with no
// isolation between connections: two concurrent conditional updates of one
// document both "win" and concurrent $inc lose increments. Flock relies on
// single-document atomicity (job locks, actor fencing, counters), as MongoDB
// guarantees it. So this wrapper puts a thin MongoDB wire-protocol front in
// front of FerretDB that runs every command that can write one at a time.
// SQLite admits a single writer anyway, so the cost is small; reads still run
// in parallel.
//
// It is built by devservices/ferretdb.ts through FerretDB's embeddable package
// (a plain `go install` of cmd/ferretdb panics: it needs a generated version
// file). It prints one line "ready <mongodb uri>" on stdout once it accepts
// connections and exits cleanly on SIGTERM or SIGINT, or when stdin closes if
// -exit-on-stdin-close is set (so it never outlives the node that started it).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	dir := flag.String("sqlite-dir", "", "directory for the SQLite databases (required)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	exitOnStdinClose := flag.Bool("exit-on-stdin-close", false, "exit when stdin reaches EOF")
	flag.Parse()

	if *dir == "" {
		fail(2, "-sqlite-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fail(1, err.Error())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail(2, "bad -log-level: "+err.Error())
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// FerretDB itself listens on a private loopback port; clients reach it
	// through the serializing front.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
		Logger:    logger,
	})
	if err != nil {
		fail(1, err.Error())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *exitOnStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	done := make(chan struct{})
	go func() {
		_ = f.Run(ctx)
		close(done)
	}()

	// MongoDBURI blocks until FerretDB's listener is bound.
	backend := strings.TrimSuffix(strings.TrimPrefix(f.MongoDBURI(), "mongodb://"), "/")
	if err := waitAccepting(backend, 30*time.Second); err != nil {
		fail(1, "FerretDB never accepted connections: "+err.Error())
	}

	front, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(1, err.Error())
	}
	go serveFront(ctx, front, backend, logger)
	go func() {
		<-ctx.Done()
		front.Close()
	}()

	fmt.Printf("ready mongodb://%s/\n", front.Addr().String())
	<-done
}

func waitAccepting(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fail(code int, message string) {
	fmt.Fprintln(os.Stderr, "flock-ferretdb: "+message)
	os.Exit(code)
}
