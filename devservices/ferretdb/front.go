package main

// The serializing wire-protocol front: one backend connection per client
// connection, request/response in lockstep, and a process-wide lock held from
// sending a writing command until its reply has arrived.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

const (
	opMsg          = 2013
	maxMessageSize = 48 * 1024 * 1024
	flagMoreToCome = 1 << 1
)

// writeLock is held while any command that may modify data runs.
var writeLock sync.Mutex

// readOnly lists commands that never modify data; everything else is serialized.
var readOnly = map[string]bool{
	"find": true, "getMore": true, "count": true, "distinct": true, "killCursors": true,
	"listCollections": true, "listIndexes": true, "listDatabases": true, "explain": true,
	"hello": true, "isMaster": true, "ismaster": true, "ping": true, "buildInfo": true, "buildinfo": true,
	"serverStatus": true, "dbStats": true, "collStats": true, "dataSize": true, "getParameter": true,
	"getLog": true, "getCmdLineOpts": true, "hostInfo": true, "whatsmyuri": true, "connectionStatus": true,
	"endSessions": true, "saslStart": true, "saslContinue": true, "getFreeMonitoringStatus": true,
	"listCommands": true, "validate": true,
}

func serveFront(ctx context.Context, l net.Listener, backend string, logger *slog.Logger) {
	for {
		client, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("accept failed", "err", err)
			}
			return
		}
		go func() {
			defer client.Close()
			server, err := net.Dial("tcp", backend)
			if err != nil {
				logger.Error("backend dial failed", "err", err)
				return
			}
			defer server.Close()
			if err := relay(client, server); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				logger.Debug("connection ended", "err", err)
			}
		}()
	}
}

func relay(client, server net.Conn) error {
	for {
		req, err := readMessage(client)
		if err != nil {
			return err
		}
		if err := roundTrip(req, client, server); err != nil {
			return err
		}
	}
}

func roundTrip(req []byte, client, server net.Conn) error {
	if writes(req) {
		writeLock.Lock()
		defer writeLock.Unlock()
		var err error
		if req, err = pushDownFence(req, server); err != nil { // fence.go
			return err
		}
	}
	if _, err := server.Write(req); err != nil {
		return err
	}
	if moreToCome(req) {
		return nil // fire-and-forget request: no reply
	}
	for {
		reply, err := readMessage(server)
		if err != nil {
			return err
		}
		if _, err := client.Write(reply); err != nil {
			return err
		}
		if !moreToCome(reply) {
			return nil
		}
	}
}

func readMessage(r io.Reader) ([]byte, error) {
	var header [16]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	size := int(int32(binary.LittleEndian.Uint32(header[0:4])))
	if size < 16 || size > maxMessageSize {
		return nil, fmt.Errorf("bad message size %d", size)
	}
	msg := make([]byte, size)
	copy(msg, header[:])
	if _, err := io.ReadFull(r, msg[16:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

func moreToCome(msg []byte) bool {
	return opCode(msg) == opMsg && len(msg) >= 20 && binary.LittleEndian.Uint32(msg[16:20])&flagMoreToCome != 0
}

// writes reports whether a request may modify data. Anything it cannot parse
// counts as a write: serializing too much is slow, too little is wrong.
func writes(msg []byte) bool {
	if opCode(msg) != opMsg {
		return true // legacy opcodes: only the handshake uses them
	}
	name, ok := commandName(msg)
	if !ok {
		return true
	}
	if name == "aggregate" {
		return containsStage(msg, "$out") || containsStage(msg, "$merge")
	}
	return !readOnly[name]
}

// commandName returns the first key of the OP_MSG body (kind 0) section.
func commandName(msg []byte) (string, bool) {
	pos := 20
	for pos < len(msg) {
		kind := msg[pos]
		pos++
		if pos+4 > len(msg) {
			return "", false
		}
		size := int(int32(binary.LittleEndian.Uint32(msg[pos : pos+4])))
		if size < 5 || pos+size > len(msg) {
			return "", false
		}
		if kind == 0 {
			doc := msg[pos : pos+size]
			// doc: int32 length, then element: type byte, cstring key, ...
			if len(doc) < 6 {
				return "", false
			}
			end := 5
			for end < len(doc) && doc[end] != 0 {
				end++
			}
			return string(doc[5:end]), end < len(doc)
		}
		pos += size // kind 1: int32 size covers identifier and documents
	}
	return "", false
}

func containsStage(msg []byte, stage string) bool {
	needle := append([]byte{}, stage...)
	needle = append(needle, 0)
	for i := 20; i+len(needle) <= len(msg); i++ {
		if string(msg[i:i+len(needle)]) == string(needle) {
			return true
		}
	}
	return false
}
