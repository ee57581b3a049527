package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hostile set: generated template files that made the loader run out
// of memory or time (issue 10), each with the error it must now get. The
// benchmark below measures each; TestHostileSet checks the errors.

const hostileHead = "apiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: engines/hostile\n"

type hostileCase struct {
	name string
	// write creates the case's files under dir and returns the path to load.
	write func(t testing.TB, dir string) string
	// errs are the errors expected, with <dir> for the directory.
	errs []string
}

func writeHostile(t testing.TB, dir, name, content string) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func hostileFile(name, content string) func(testing.TB, string) string {
	return func(t testing.TB, dir string) string { return writeHostile(t, dir, name, content) }
}

func chainDocs(from, to, last int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "---\napiVersion: guestcatalog.dev/v1alpha1\nkind: Fragment\nname: engines/f%d\n", i)
		if i+1 < last {
			fmt.Fprintf(&b, "base: [engines/f%d]\n", i+1)
		}
		fmt.Fprintf(&b, "env: {V%d: x}\n", i)
	}
	return b.String()
}

func hostileCases() []hostileCase {
	var blockDeep strings.Builder
	blockDeep.WriteString(hostileHead + "params:\n")
	for i := 1; i <= 1000; i++ {
		blockDeep.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	params := func(n int) string {
		var b strings.Builder
		b.WriteString(hostileHead + "params:\n")
		for i := range n {
			fmt.Fprintf(&b, "  p%d: value\n", i)
		}
		return b.String()
	}
	var items strings.Builder
	items.WriteString(hostileHead + "engine:\n  name: docker\n  requires:\n")
	for range 30_000 {
		items.WriteString("  - what: internet\n")
	}
	big := strings.Repeat("x", 512<<10)
	var fanout strings.Builder
	fanout.WriteString(hostileHead + "provision:\n  - mode: system\n    script: &s " + big + "\n")
	for range 500 {
		fanout.WriteString("  - {mode: system, script: *s}\n")
	}
	var laughs strings.Builder
	laughs.WriteString(hostileHead + "params:\n  l0: &l0 lol\n")
	laughs.WriteString("env: {a: &a [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]}\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&laughs, "%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	var script strings.Builder
	script.WriteString(hostileHead + "provision:\n  - mode: system\n    script: |\n")
	for script.Len() < DefaultFileBytes-100 {
		script.WriteString("      echo a line of a very long provisioning script\n")
	}

	return []hostileCase{{
		name:  "flow-200k-deep",
		write: hostileFile("flow.yaml", hostileHead+"params: "+strings.Repeat("[", 200_000)+strings.Repeat("]", 200_000)+"\n"),
		errs:  []string{"<dir>/flow.yaml:4: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		// text that looks like a quote, a bracket or a block scalar must
		// not hide the structure after it from the scan
		name:  "hidden-after-quote",
		write: hostileFile("quote.yaml", hostileHead+"description: it's\nparams: "+strings.Repeat("[", 200_000)+strings.Repeat("]", 200_000)+"\n"),
		errs:  []string{"<dir>/quote.yaml:5: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		name:  "hidden-after-tab",
		write: hostileFile("tab.yaml", hostileHead+"aliases:\n\t"+strings.Repeat("- ", 10_000)+"x\n"),
		errs:  []string{"<dir>/tab.yaml:5: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		name:  "hidden-after-bracket",
		write: hostileFile("bracket.yaml", hostileHead+"description: a[0 {\naliases:\n"+strings.Repeat("- ", 10_000)+"x\n"),
		errs:  []string{"<dir>/bracket.yaml:6: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		name:  "hidden-under-block-scalar",
		write: hostileFile("scalar.yaml", hostileHead+"description: |\n    text\n  "+strings.Repeat("[", 200_000)+strings.Repeat("]", 200_000)+"\n"),
		errs:  []string{"<dir>/scalar.yaml:6: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		name:  "block-sequences-10k-deep",
		write: hostileFile("seq.yaml", hostileHead+"aliases:\n"+strings.Repeat("- ", 10_000)+"x\n"),
		errs:  []string{"<dir>/seq.yaml:5: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		name:  "block-mappings-1000-deep",
		write: hostileFile("block.yaml", blockDeep.String()),
		errs:  []string{"<dir>/block.yaml:68: nesting deeper than 64 levels (the limit is 64)"},
	}, {
		name:  "params-100k",
		write: hostileFile("params.yaml", params(100_000)),
		errs:  []string{"<dir>/params.yaml: the file is 1.5 MiB, over the limit of 1 MiB for a template file"},
	}, {
		name:  "params-20k",
		write: hostileFile("params.yaml", params(20_000)),
		errs:  []string{"<dir>/params.yaml:1005: a mapping with more than 1000 keys (the limit is 1000)"},
	}, {
		name:  "list-30k-items",
		write: hostileFile("items.yaml", items.String()),
		errs:  []string{"<dir>/items.yaml:16669: more than 50000 YAML nodes in one file (the limit is 50000)"},
	}, {
		name:  "flow-100k-entries",
		write: hostileFile("wide.yaml", hostileHead+"aliases: ["+strings.Repeat("a, ", 100_000)+"a]\n"),
		errs:  []string{"<dir>/wide.yaml:4: a flow collection with more than 1000 entries (the limit is 1000)"},
	}, {
		name: "file-10MiB",
		write: func(t testing.TB, dir string) string {
			return writeHostile(t, dir, "big.yaml", hostileHead+"description: "+strings.Repeat("x", 10<<20)+"\n")
		},
		errs: []string{"<dir>/big.yaml: the file is 10.0 MiB, over the limit of 1 MiB for a template file"},
	}, {
		name:  "script-1MiB",
		write: hostileFile("script.yaml", script.String()),
	}, {
		name:  "documents-3000",
		write: hostileFile("docs.yaml", chainDocs(0, 3000, 3000)),
		errs:  []string{"<dir>/docs.yaml:6001: more than 1000 documents in one file (the limit is 1000)"},
	}, {
		name: "chain-3000-fragments",
		write: func(t testing.TB, dir string) string {
			d := filepath.Join(dir, "chain")
			require.NoError(t, os.Mkdir(d, 0o755))
			for i := range 3 {
				writeHostile(t, d, fmt.Sprintf("part%d.yaml", i), chainDocs(i*1000, (i+1)*1000, 3000))
			}
			return d
		},
		errs: []string{"<dir>/chain/part0.yaml:191:8: base[0]: base chain deeper than 32 documents (the limit is 32): engines/f0 -> engines/f1 -> engines/f2 -> ... (27 more) -> engines/f30 -> engines/f31 -> engines/f32"},
	}, {
		name:  "alias-fanout-500MiB",
		write: hostileFile("fanout.yaml", fanout.String()),
		errs:  []string{"<dir>/fanout.yaml:8: aliases expand to more than 1 MiB (the limit is 1 MiB)"},
	}, {
		name:  "alias-billion-laughs",
		write: hostileFile("laughs.yaml", laughs.String()),
		errs:  []string{"<dir>/laughs.yaml:11: aliases expand to more than 1 MiB (the limit is 1 MiB)"},
	}}
}

// checkHostile loads path alone and checks everything, as `catalog
// validate` does, and returns every error.
func checkHostile(ctx context.Context, path string) ([]string, error) {
	c, err := loadWith(ctx, loadOptions{paths: []string{path}, oneLayer: true})
	if c == nil {
		return nil, err
	}
	var errs []string
	for _, r := range c.CheckAll() {
		errs = append(errs, r.Errors.Strings()...)
	}
	return errs, nil
}

func TestHostileSet(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tc.write(t, dir)
			errs, err := checkHostile(context.Background(), p)
			require.NoError(t, err)
			for i := range errs {
				errs[i] = strings.ReplaceAll(errs[i], dir, "<dir>")
			}
			assert.Equal(t, tc.errs, errs)
		})
	}
}

// peakHeap samples the heap in use while f runs and returns the peak
// above what was in use before (run a GC first, out of the timing).
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			v := read()
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	peak = max(peak, read())
	if peak < base {
		return 0
	}
	return peak - base
}

// cpuTime is the CPU time (user and system) this process has used: on a
// machine shared with other work, a steadier figure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHostile loads and checks each case of the hostile set, as
// `catalog validate` does, and reports its time (ns/op, wall clock; cpu-ms,
// the process's CPU time) and peak heap (target: each ≤ 1 s and ≤ 200 MB).
func BenchmarkHostile(b *testing.B) {
	for _, tc := range hostileCases() {
		b.Run(tc.name, func(b *testing.B) {
			p := tc.write(b, b.TempDir())
			var peak uint64
			var cpu time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
				start := cpuTime()
				peak = max(peak, peakHeap(func() {
					if _, err := checkHostile(context.Background(), p); err != nil {
						b.Fatal(err)
					}
				}))
				cpu += cpuTime() - start
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}
