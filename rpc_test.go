package rpc

import (
	"strconv"
	"testing"
	"time"
)

func TestDefaultServer(t *testing.T) {
	// DefaultServer lives as long as the process: a unique name per run
	// keeps -count=N working.
	name := "DefaultCalc" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := RegisterName(name, &Calc{}); err != nil {
		t.Fatalf("RegisterName(%q) = %v", name, err)
	}
	if err := RegisterName(name, &Calc{}); err == nil {
		t.Fatalf("RegisterName(%q) twice: error = nil, want duplicate error", name)
	}
	if err := Register(BadMethods{}); err == nil {
		t.Fatal("Register(BadMethods{}) error = nil")
	}
	// Look the method up rather than serve DefaultServer: a served server
	// keeps idle handler workers until it is closed, and DefaultServer is
	// never closed.
	if _, err := DefaultServer.lookup([]byte(name + ".Add")); err != nil {
		t.Errorf("DefaultServer.lookup(%s.Add) = %v", name, err)
	}
}
