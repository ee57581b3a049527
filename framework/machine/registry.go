package machine

import (
	"context"
	"errors"
	"sync"
)

// Every started machine is registered until it is closed, so that a panic
// path, a signal handler or a test's last cleanup can stop them all.
var registry = struct {
	sync.Mutex
	live map[*Machine]struct{}
}{live: map[*Machine]struct{}{}}

func register(m *Machine) {
	registry.Lock()
	registry.live[m] = struct{}{}
	registry.Unlock()
}

func unregister(m *Machine) {
	registry.Lock()
	delete(registry.live, m)
	registry.Unlock()
}

// Live returns the machines started and not yet closed.
func Live() []*Machine {
	registry.Lock()
	defer registry.Unlock()
	out := make([]*Machine, 0, len(registry.live))
	for m := range registry.live {
		out = append(out, m)
	}
	return out
}

// CloseAll closes every live machine (concurrently) and returns their
// errors joined. For panic and signal paths: `defer machine.CloseAll(ctx)`.
func CloseAll(ctx context.Context) error {
	ms := Live()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Close(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
