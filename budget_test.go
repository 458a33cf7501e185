package rpc

import "testing"

func TestBudget(t *testing.T) {
	b := newMemBudget(800) // reserve 100: large frames get 700
	var odA, odB, odC bool
	acquire := func(n int64, small bool, od *bool) bool {
		t.Helper()
		_, ok := b.tryAcquire(n, small, od)
		return ok
	}
	if !acquire(700, false, &odA) || odA {
		t.Fatalf("tryAcquire(700, large) = false or took the overdraft; want true within the limit")
	}
	if !acquire(50, true, &odB) || odB {
		t.Fatalf("tryAcquire(50, small) = false; want true: small frames may use the reserve")
	}
	// The next large charge does not fit: it takes the overdraft.
	if !acquire(300, false, &odC) || !odC {
		t.Fatalf("tryAcquire(300, large) with the budget spent: want the overdraft")
	}
	// The overdraft is charged apart: small frames still fit the reserve.
	if !acquire(50, true, &odB) {
		t.Fatalf("tryAcquire(50, small) with the overdraft taken = false; want true")
	}
	// Nobody else may overdraw, and the budget is full.
	var odD bool
	wake, ok := b.tryAcquire(1, true, &odD)
	if ok || odD || wake == nil {
		t.Fatalf("tryAcquire(1) on a full budget = %v (overdraft %v); want a wait", ok, odD)
	}
	// The overdraft holder may go on growing its frame.
	if !acquire(300, false, &odC) {
		t.Fatalf("tryAcquire by the overdraft holder = false; want true")
	}
	if got := b.inUse(); got != 1400 {
		t.Errorf("inUse() = %d, want 1400", got)
	}
	b.release(100, false, &odB)
	select {
	case <-wake:
	default:
		t.Fatal("release did not wake the waiter")
	}
	b.release(600, true, &odC)
	if odC {
		t.Error("release left the caller holding the overdraft")
	}
	b.release(700, false, &odA)
	if !acquire(100, false, &odD) || odD {
		t.Errorf("tryAcquire(100, large) after releases = false or overdraft; want true")
	}
	b.release(100, false, &odD)
	if got := b.inUse(); got != 0 {
		t.Errorf("inUse() after releasing everything = %d, want 0", got)
	}
}
