package registry

import "testing"

func TestMemory(t *testing.T) {
	t.Parallel()
	testRegistry(t, func(t *testing.T) Registry {
		m := NewMemory(WithTTL(testTTL))
		t.Cleanup(func() { m.Close() })
		return m
	})
}
