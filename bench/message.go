package main

import (
	"errors"
	"fmt"
)

// BenchmarkMessage is the payload every system sends and echoes: the
// BenchmarkMessage of rpcx-benchmark and kitex-benchmark (581 bytes as
// protobuf) as a plain Go struct, fields in their order with their Go types.
// See shared/BENCHMARK_MESSAGE.md.
type BenchmarkMessage struct {
	Field1   string
	Field9   string
	Field18  string
	Field80  bool
	Field81  bool
	Field2   int32
	Field3   int32
	Field280 int32
	Field6   int32
	Field22  int64
	Field4   string
	Field5   []uint64
	Field59  bool
	Field7   string
	Field16  int32
	Field130 int32
	Field12  bool
	Field17  bool
	Field13  bool
	Field14  bool
	Field104 int32
	Field100 int32
	Field101 int32
	Field102 string
	Field103 string
	Field29  int32
	Field30  bool
	Field60  int32
	Field271 int32
	Field272 int32
	Field150 int32
	Field23  int32
	Field25  int32
	Field24  bool
	Field78  bool
	Field67  int32
	Field68  int32
	Field128 int32
	Field129 string
	Field131 int32
}

// fillString is the 18-rune, 54-byte string of the fill rule.
const fillString = "许多往事在眼前一幕一幕，变的那麼模糊"

// fillInt is the value of every integer field under the fill rule.
const fillInt = 100000

// errMismatch is returned by checkReply when an echoed message differs from
// the request.
var errMismatch = errors.New("bench: reply does not match request")

// newMessage returns a message filled by the rule of BENCHMARK_MESSAGE.md:
// every string the fill string, every integer 100000, every bool true and
// Field5 empty.
func newMessage() *BenchmarkMessage {
	s, i := fillString, int32(fillInt)
	return &BenchmarkMessage{
		Field1: s, Field9: s, Field18: s, Field80: true, Field81: true,
		Field2: i, Field3: i, Field280: i, Field6: i, Field22: fillInt,
		Field4: s, Field59: true, Field7: s, Field16: i, Field130: i,
		Field12: true, Field17: true, Field13: true, Field14: true,
		Field104: i, Field100: i, Field101: i, Field102: s, Field103: s,
		Field29: i, Field30: true, Field60: i, Field271: i, Field272: i,
		Field150: i, Field23: i, Field25: i, Field24: true, Field78: true,
		Field67: i, Field68: i, Field128: i, Field129: s, Field131: i,
	}
}

// checkReply reports whether got is a faithful echo of a filled message. It
// compares a sample of fields spread over the struct (first, last, each type)
// so that a wrong or partial decode fails loudly without costing a full
// comparison per call.
func checkReply(got *BenchmarkMessage) error {
	switch {
	case got.Field1 != fillString:
		return fmt.Errorf("%w: Field1 = %q", errMismatch, got.Field1)
	case got.Field129 != fillString:
		return fmt.Errorf("%w: Field129 = %q", errMismatch, got.Field129)
	case got.Field22 != fillInt:
		return fmt.Errorf("%w: Field22 = %d", errMismatch, got.Field22)
	case got.Field131 != fillInt:
		return fmt.Errorf("%w: Field131 = %d", errMismatch, got.Field131)
	case !got.Field80 || !got.Field78:
		return fmt.Errorf("%w: Field80 = %v, Field78 = %v", errMismatch, got.Field80, got.Field78)
	case len(got.Field5) != 0:
		return fmt.Errorf("%w: len(Field5) = %d", errMismatch, len(got.Field5))
	}
	return nil
}

// EchoService is the service every RPC system registers: it returns its
// argument.
type EchoService struct{}

// Echo copies args into reply.
func (EchoService) Echo(args *BenchmarkMessage, reply *BenchmarkMessage) error {
	*reply = *args
	return nil
}
