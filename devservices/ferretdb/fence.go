package main

// Fenced-write pushdown.
//
// FerretDB v1's SQLite backend turns a filter into SQL only when it is exactly
// {_id: <string or ObjectId>}; any other filter reads and decodes the whole
// collection. Flock's hot writes are fenced single-document writes such as
// update {q: {_id: X, epoch: {$lte: N}}, upsert: true} or
// {q: {_id: X, epoch: N, version: M}}, so each one cost a collection scan.
//
// The front runs every write under writeLock, so it can first look the
// document up by _id on the same backend connection and, when the outcome is
// then certain, forward the write with the filter {_id: X}:
//
//   - the document exists and matches every condition: {_id: X} selects the
//     same document;
//   - it does not exist and the write is an upsert whose other conditions are
//     all single non-$eq operators (which an upsert does not copy into the
//     new document): {_id: X} inserts the same document;
//   - it does not exist and the write is not an upsert: {_id: X} matches
//     nothing either, so the write changes nothing, as it would have (a
//     document actor's claim of a document not yet created is such a write).
//
// Everything else, including whatever this file cannot evaluate with
// certainty, is forwarded unchanged, so the server's own semantics (such as
// the duplicate-key error of an upsert whose fence fails) are kept.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"io"
	"math"
	"strings"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
)

const flagChecksumPresent = 1 << 0

// lookupRequestID numbers the front's own find commands.
var lookupRequestID atomic.Int32

// pushDownFence returns req with its filter reduced to {_id: X} when that
// provably selects the same document, and req itself otherwise. The caller
// must hold writeLock and be between requests on server.
func pushDownFence(req []byte, server io.ReadWriter) ([]byte, error) {
	m, ok := parseOpMsg(req)
	if !ok {
		return req, nil
	}
	w, ok := fencedWriteIn(m)
	if !ok {
		return req, nil
	}
	f, ok := parseFence(w.filter)
	if !ok {
		return req, nil
	}
	db, ok := m.body.Lookup("$db").StringValueOK()
	if !ok {
		return req, nil
	}
	doc, ok, err := findByID(server, db, w.coll, f.id)
	if err != nil || !ok {
		return req, err
	}
	if (doc != nil && f.matches(doc)) || (doc == nil && (!w.upsert || !f.copies)) {
		filter, err := bson.Marshal(bson.D{{Key: "_id", Value: f.id}})
		if err != nil {
			return req, nil
		}
		w.setFilter(filter)
		return m.encode(), nil
	}
	return req, nil
}

// opMessage is a parsed OP_MSG: its body (kind 0 section) and document
// sequences (kind 1 sections).
type opMessage struct {
	header [16]byte
	flags  uint32
	body   bson.Raw
	seqs   []*docSequence
}

type docSequence struct {
	id   string
	docs []bson.Raw
}

func parseOpMsg(msg []byte) (*opMessage, bool) {
	if len(msg) < 21 || opCode(msg) != opMsg {
		return nil, false
	}
	m := &opMessage{flags: binary.LittleEndian.Uint32(msg[16:20])}
	copy(m.header[:], msg[:16])
	if m.flags&(flagChecksumPresent|flagMoreToCome) != 0 {
		return nil, false
	}
	for rest := msg[20:]; len(rest) > 0; {
		kind := rest[0]
		rest = rest[1:]
		size, ok := sizePrefix(rest)
		if !ok {
			return nil, false
		}
		section := rest[:size]
		rest = rest[size:]
		switch kind {
		case 0:
			if m.body != nil || bson.Raw(section).Validate() != nil {
				return nil, false
			}
			m.body = section
		case 1:
			nul := bytes.IndexByte(section[4:], 0)
			if nul < 0 {
				return nil, false
			}
			s := &docSequence{id: string(section[4 : 4+nul])}
			for docs := section[5+nul:]; len(docs) > 0; {
				n, ok := sizePrefix(docs)
				if !ok || bson.Raw(docs[:n]).Validate() != nil {
					return nil, false
				}
				s.docs = append(s.docs, docs[:n])
				docs = docs[n:]
			}
			m.seqs = append(m.seqs, s)
		default:
			return nil, false
		}
	}
	return m, m.body != nil
}

// sizePrefix reads the int32 size that starts b and checks it fits in b.
func sizePrefix(b []byte) (int, bool) {
	if len(b) < 5 {
		return 0, false
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	return n, n >= 5 && n <= len(b)
}

func (m *opMessage) encode() []byte {
	out := append([]byte(nil), m.header[:]...)
	out = binary.LittleEndian.AppendUint32(out, m.flags)
	out = append(out, 0)
	out = append(out, m.body...)
	for _, s := range m.seqs {
		out = append(out, 1)
		start := len(out)
		out = append(out, 0, 0, 0, 0)
		out = append(out, s.id...)
		out = append(out, 0)
		for _, d := range s.docs {
			out = append(out, d...)
		}
		binary.LittleEndian.PutUint32(out[start:], uint32(len(out)-start))
	}
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// fencedWrite is the filter of a single-document write and how to replace it.
type fencedWrite struct {
	coll      string
	filter    bson.Raw
	upsert    bool
	setFilter func(bson.Raw)
}

// fencedWriteIn finds the filter of an update with one non-multi statement or
// of a findAndModify that does not remove.
func fencedWriteIn(m *opMessage) (w fencedWrite, ok bool) {
	var cmd bson.Raw // the document holding the filter
	var filterKey string
	var put func(bson.Raw) // puts a rewritten cmd back into m
	first, err := m.body.IndexErr(0)
	if err != nil {
		return w, false
	}
	if w.coll, ok = first.Value().StringValueOK(); !ok {
		return w, false
	}
	switch first.Key() {
	case "update":
		filterKey = "q"
		var seq *docSequence
		for _, s := range m.seqs {
			if s.id == "updates" {
				seq = s
			}
		}
		inBody := m.body.Lookup("updates")
		array, isArray := inBody.ArrayOK()
		switch {
		case isArray && seq == nil:
			vals, err := array.Values()
			if err != nil || len(vals) != 1 {
				return w, false
			}
			if cmd, ok = vals[0].DocumentOK(); !ok {
				return w, false
			}
			put = func(stmt bson.Raw) {
				updates := appendElement(nil, "0", bson.TypeEmbeddedDocument, stmt)
				m.body = replaceValue(m.body, "updates", bson.TypeArray, wrapDocument(updates))
			}
		case inBody.IsZero() && seq != nil && len(seq.docs) == 1:
			cmd = seq.docs[0]
			put = func(stmt bson.Raw) { seq.docs[0] = stmt }
		default:
			return w, false
		}
		if multi, ok := boolField(cmd, "multi"); multi || !ok {
			return w, false
		}
	case "findAndModify", "findandmodify":
		cmd, filterKey = m.body, "query"
		put = func(body bson.Raw) { m.body = body }
		if remove, ok := boolField(cmd, "remove"); remove || !ok {
			return w, false
		}
	default:
		return w, false
	}
	upsert, ok := boolField(cmd, "upsert")
	if !ok || !cmd.Lookup("collation").IsZero() {
		return w, false
	}
	if w.filter, ok = cmd.Lookup(filterKey).DocumentOK(); !ok {
		return w, false
	}
	w.upsert = upsert
	w.setFilter = func(filter bson.Raw) {
		put(replaceValue(cmd, filterKey, bson.TypeEmbeddedDocument, filter))
	}
	return w, true
}

// boolField reads an optional boolean; ok is false if it has another type.
func boolField(doc bson.Raw, key string) (value, ok bool) {
	v := doc.Lookup(key)
	if v.IsZero() {
		return false, true
	}
	return v.BooleanOK()
}

// replaceValue returns doc with the value of key replaced.
func replaceValue(doc bson.Raw, key string, t bsontype.Type, value []byte) bson.Raw {
	elems, _ := doc.Elements() // doc has been read already
	var out []byte
	for _, e := range elems {
		if e.Key() == key {
			out = appendElement(out, key, t, value)
		} else {
			out = append(out, e...)
		}
	}
	return wrapDocument(out)
}

func appendElement(out []byte, key string, t bsontype.Type, value []byte) []byte {
	out = append(out, byte(t))
	out = append(out, key...)
	out = append(out, 0)
	return append(out, value...)
}

// wrapDocument turns encoded elements into a document.
func wrapDocument(elems []byte) bson.Raw {
	doc := binary.LittleEndian.AppendUint32(nil, uint32(4+len(elems)+1))
	doc = append(doc, elems...)
	return append(doc, 0)
}

// findByID reads the document with the given _id over server. ok is false if
// the reply is not understood; doc is nil if there is no such document.
func findByID(server io.ReadWriter, db, coll string, id bson.RawValue) (doc bson.Raw, ok bool, err error) {
	m := opMessage{}
	m.body, err = bson.Marshal(bson.D{
		{Key: "find", Value: coll},
		{Key: "filter", Value: bson.D{{Key: "_id", Value: id}}},
		{Key: "limit", Value: int32(1)},
		{Key: "singleBatch", Value: true},
		{Key: "$db", Value: db},
	})
	if err != nil {
		return nil, false, nil
	}
	binary.LittleEndian.PutUint32(m.header[4:], uint32(lookupRequestID.Add(1)))
	binary.LittleEndian.PutUint32(m.header[12:], opMsg)
	if _, err := server.Write(m.encode()); err != nil {
		return nil, false, err
	}
	reply, err := readMessage(server)
	if err != nil {
		return nil, false, err
	}
	r, ok := parseOpMsg(reply)
	if !ok {
		return nil, false, nil
	}
	if okValue, _ := number(r.body.Lookup("ok")); okValue != 1 {
		return nil, false, nil
	}
	array, ok := r.body.Lookup("cursor", "firstBatch").ArrayOK()
	if !ok {
		return nil, false, nil
	}
	batch, err := array.Values()
	switch {
	case err != nil || len(batch) > 1:
		return nil, false, nil
	case len(batch) == 0:
		return nil, true, nil
	}
	doc, ok = batch[0].DocumentOK()
	return doc, ok, nil
}

// fence is a filter {_id: X, ...} whose other conditions are scalar
// equalities or numeric comparisons on top-level fields.
type fence struct {
	id    bson.RawValue
	conds []bson.RawElement
	// copies is set when an upsert would copy a condition into the document
	// it inserts (equalities, $eq, and, in FerretDB, multi-operator objects).
	copies bool
}

var comparisons = map[string]bool{"$lte": true, "$lt": true, "$gte": true, "$gt": true, "$eq": true, "$ne": true}

func parseFence(filter bson.Raw) (f fence, ok bool) {
	elems, err := filter.Elements()
	if err != nil {
		return f, false
	}
	seen := map[string]bool{}
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		if seen[key] {
			return f, false
		}
		seen[key] = true
		switch {
		case key == "_id":
			// Only these _id types are pushed down to SQL by FerretDB.
			if v.Type != bson.TypeString && v.Type != bson.TypeObjectID {
				return f, false
			}
			f.id = v
		case key == "" || key[0] == '$' || strings.Contains(key, "."):
			return f, false
		case isScalar(v.Type):
			f.conds = append(f.conds, e)
			f.copies = true
		case v.Type == bson.TypeEmbeddedDocument:
			ops, err := v.Document().Elements() // length checked by filter.Elements
			if err != nil || len(ops) == 0 {
				return f, false
			}
			for _, op := range ops {
				if _, isNum := number(op.Value()); !comparisons[op.Key()] || !isNum {
					return f, false
				}
			}
			f.conds = append(f.conds, e)
			f.copies = f.copies || len(ops) > 1 || ops[0].Key() == "$eq"
		default:
			return f, false
		}
	}
	// {_id: X} alone is pushed down already.
	return f, !f.id.IsZero() && len(f.conds) > 0
}

func isScalar(t bsontype.Type) bool {
	switch t {
	case bson.TypeString, bson.TypeInt32, bson.TypeInt64, bson.TypeDouble,
		bson.TypeBoolean, bson.TypeNull, bson.TypeDateTime:
		return true
	}
	return false
}

// matches reports whether doc certainly matches every condition of f. When in
// doubt (missing fields, arrays, NaN, type mismatches) it says no, and the
// write goes to the server unchanged.
func (f fence) matches(doc bson.Raw) bool {
	for _, c := range f.conds {
		have, err := doc.LookupErr(c.Key())
		if err != nil {
			return false
		}
		want := c.Value()
		if want.Type != bson.TypeEmbeddedDocument {
			if !equal(have, want) {
				return false
			}
			continue
		}
		ops, _ := want.Document().Elements()
		for _, op := range ops {
			if !holds(op.Key(), have, op.Value()) {
				return false
			}
		}
	}
	return true
}

func equal(a, b bson.RawValue) bool {
	if _, isNum := number(b); isNum {
		return holds("$eq", a, b)
	}
	return a.Type == b.Type && bytes.Equal(a.Value, b.Value)
}

// holds evaluates the comparison "a op b" for numbers of any BSON type.
func holds(op string, a, b bson.RawValue) bool {
	var c int
	x, okA := number(a)
	y, okB := number(b)
	switch {
	case !okA || !okB:
		return false
	case a.Type != bson.TypeDouble && b.Type != bson.TypeDouble:
		c = cmp.Compare(a.AsInt64(), b.AsInt64())
	case math.IsNaN(x) || math.IsNaN(y) || !exact(a) || !exact(b):
		return false
	default:
		c = cmp.Compare(x, y)
	}
	switch op {
	case "$lte":
		return c <= 0
	case "$lt":
		return c < 0
	case "$gte":
		return c >= 0
	case "$gt":
		return c > 0
	case "$eq":
		return c == 0
	case "$ne":
		return c != 0
	}
	return false
}

// number returns an int32, int64 or double as a float64.
func number(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		return float64(v.Int64()), true
	case bson.TypeDouble:
		return v.Double(), true
	}
	return 0, false
}

// exact reports whether v converts to a float64 without rounding.
func exact(v bson.RawValue) bool {
	return v.Type != bson.TypeInt64 || (v.Int64() >= -1<<53 && v.Int64() <= 1<<53)
}
