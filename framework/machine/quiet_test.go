package machine

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCPUTicks(t *testing.T) {
	// A command name with a space and a ')' of its own.
	n, err := parseCPUTicks("4242 (qemu sys) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 3 0 100 1000 10")
	require.NoError(t, err)
	assert.EqualValues(t, 1290, n)
	_, err = parseCPUTicks("4242 (qemu) S 1 2")
	assert.ErrorContains(t, err, "fields after the name")
	_, err = parseCPUTicks("no name")
	assert.Error(t, err)
	_, err = parseCPUTicks("1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 1 0")
	assert.ErrorContains(t, err, "utime")
}

// An idle process is quiet within a second; a busy one never is.
func TestWaitQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a second or two")
	}
	took, ok := waitQuiet(context.Background(), os.Getpid(), 3*time.Second)
	assert.True(t, ok, "this test process idles")
	assert.Less(t, took, 2*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		go func() {
			for ctx.Err() == nil {
			}
		}()
	}
	took, ok = waitQuiet(context.Background(), os.Getpid(), 1500*time.Millisecond)
	assert.False(t, ok, "a busy process is never quiet")
	assert.GreaterOrEqual(t, took, 1500*time.Millisecond)
}
