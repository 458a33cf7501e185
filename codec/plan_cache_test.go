package codec

import (
	"reflect"
	"sync"
	"testing"
)

// TestPlanCacheManyTypes: with more types than slots, so that types share
// slots and evict each other, every lookup still returns its own type's
// plan, compiled once per type, also under concurrent lookups.
func TestPlanCacheManyTypes(t *testing.T) {
	type plan struct{ t reflect.Type }
	var c planCache[plan]
	var mu sync.Mutex
	compiled := map[reflect.Type]int{}
	compile := func(t reflect.Type) *plan {
		mu.Lock()
		compiled[t]++
		mu.Unlock()
		return &plan{t: t}
	}
	types := make([]reflect.Type, 4*planSlots)
	for i := range types {
		types[i] = reflect.ArrayOf(i+1, reflect.TypeFor[int16]())
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range types {
					ty := types[(i*7+g+round)%len(types)]
					if p := c.load(ty, compile); p.t != ty {
						t.Errorf("load(%v) returned the plan of %v", ty, p.t)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, ty := range types {
		if n := compiled[ty]; n < 1 || n > 4 {
			t.Errorf("%v compiled %d times, want once (at most once per racing goroutine)", ty, n)
		}
	}
}
