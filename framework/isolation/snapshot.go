package isolation

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
)

// Resumer resumes the template's saved guest into a disk of its own, runs
// script in it (sh -c, as the template's user), removes the guest and
// returns the script's stdout. Two calls are two independent resumes of one
// saved guest.
type Resumer func(ctx context.Context, script string) (string, error)

// ResumeSaved is the Resumer of a saved guest (instance.FindSaved): each
// call is an instance.Run, a disposable guest as `catalog run --rm` makes.
func ResumeSaved(g *instance.Guest, ivs *intervals.Set) Resumer {
	return func(ctx context.Context, script string) (string, error) {
		var out, errb bytes.Buffer
		code, err := instance.Run(ctx, instance.RunInput{
			Guest: g, Args: []string{"sh", "-c", script}, Intervals: ivs,
			Streams: instance.Streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb},
		})
		if err != nil {
			return "", err
		}
		if code != 0 {
			return "", fmt.Errorf("exit status %d: %s", code, oneLine(errb.String()))
		}
		return out.String(), nil
	}
}

// randomSamples is how many getrandom(2) calls of 16 bytes each resume
// makes on CPU 0.
const randomSamples = 256

// randomScript returns the script that reads 32 bytes from /dev/urandom
// and, where python3 is installed, 32 from getrandom(2), straight after the
// resume; then, pinned to CPU 0, randomSamples calls of 16 bytes. The kernel's crng is per CPU
// and every call, the guest's own included (sshd, exec's ASLR), takes one
// step of it: two resumes that share its state rarely return equal first
// reads (they read on another CPU or after another number of steps), but
// their runs of samples overlap. Measured here on aarch64 (no vmgenid in
// QEMU 7.2): single reads differed every time, while 226 of 256 samples
// were common to two resumes; x86_64 with vmgenid: none.
func randomScript() string {
	return `printf 'urandom %s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
if command -v python3 >/dev/null; then python3 -c '
import os
print("getrandom", os.getrandom(32).hex())
try:
    os.sched_setaffinity(0, {0})
except OSError:
    pass
print("samples", ",".join(os.getrandom(16).hex() for _ in range(` + strconv.Itoa(randomSamples) + `)))'; fi`
}

// parseRandom maps each source (urandom, getrandom) to its hex bytes, and
// samples to its comma-separated 16-byte values.
func parseRandom(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && (len(f[1]) == 64 || f[0] == "samples") {
			m[f[0]] = f[1]
		}
	}
	return m
}

// commonSamples counts the values of b's samples that are in a's.
func commonSamples(a, b string) (common, total int) {
	seen := map[string]bool{}
	for _, v := range strings.Split(a, ",") {
		if len(v) == 32 {
			seen[v] = true
		}
	}
	for _, v := range strings.Split(b, ",") {
		if len(v) == 32 {
			total++
			if seen[v] {
				common++
			}
		}
	}
	return common, total
}

// checkSnapshotUnique resumes the template's saved guest twice and compares
// what its RNG gives right after each resume: equal bytes, or any value
// common to the two runs of samples, mean every guest resumed from the
// snapshot shares its random state (keys, nonces, tokens). QEMU's vmgenid
// device (x86_64) makes the guest kernel reseed on resume. Without a saved
// guest there is nothing to compare: skipped, never held.
func checkSnapshotUnique(ctx context.Context, in Input) (Status, string) {
	if in.Resume == nil {
		reason := in.NoResumeReason
		if reason == "" {
			reason = "no saved guest to resume"
		}
		return Skipped, reason
	}
	var got [2]map[string]string
	for i := range got {
		out, err := in.Resume(ctx, randomScript())
		if err != nil {
			return Skipped, fmt.Sprintf("resume %d of the saved guest: %v", i+1, err)
		}
		got[i] = parseRandom(out)
		if got[i]["urandom"] == "" {
			return Skipped, fmt.Sprintf("resume %d: no random bytes read: %q", i+1, oneLine(out))
		}
	}
	var same, differ []string
	for _, src := range []string{"urandom", "getrandom"} {
		a, b := got[0][src], got[1][src]
		switch {
		case a == "" || b == "":
		case a == b:
			same = append(same, fmt.Sprintf("%s gave %s… after both", src, a[:16]))
		default:
			differ = append(differ, fmt.Sprintf("%s %s… vs %s…", src, a[:16], b[:16]))
		}
	}
	if a, b := got[0]["samples"], got[1]["samples"]; a != "" && b != "" {
		common, total := commonSamples(a, b)
		if common > 0 {
			same = append(same, fmt.Sprintf("%d of resume 2's %d getrandom samples on CPU 0 were also resume 1's", common, total))
		} else {
			differ = append(differ, fmt.Sprintf("no getrandom sample on CPU 0 in common (%d each)", total))
		}
	}
	if len(same) > 0 {
		return NotHeld, "two resumes of one saved guest share random state: " + strings.Join(same, "; ")
	}
	return Held, "two resumes of the saved guest differ: " + strings.Join(differ, "; ")
}

// SavedResumer finds the template's saved guest in cacheDir (never
// provisioning one) and returns its Resumer, or nil and the reason there is
// none (the snapshot-uniqueness check then reports skipped with it).
func SavedResumer(ctx context.Context, cacheDir, arch string, t *catalog.Template, ivs *intervals.Set) (Resumer, string) {
	if len(t.Mounts) > 0 {
		return nil, "the template has mounts: QEMU cannot save a guest with a 9p export, so there is no saved guest to resume"
	}
	img, err := image.Resolve(ctx, t, arch, image.WithOffline(), image.WithCacheDir(cacheDir))
	if err != nil {
		return nil, fmt.Sprintf("no image of %s in the cache to resume: %v", t.Name, err)
	}
	g, err := instance.FindSaved(ctx, instance.SavedInput{CacheDir: cacheDir, Template: t, Image: img, Arch: arch})
	if err != nil {
		return nil, err.Error()
	}
	return ResumeSaved(g, ivs), ""
}
