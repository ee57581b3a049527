package isolation

import (
	"bytes"
	"context"
	"fmt"
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

// randomScript reads 32 bytes from /dev/urandom and, where python3 is
// installed, 32 from getrandom(2), straight after the resume.
const randomScript = `printf 'urandom %s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
if command -v python3 >/dev/null; then python3 -c 'import os; print("getrandom", os.getrandom(32).hex())'; fi`

// parseRandom maps each source (urandom, getrandom) to its hex bytes.
func parseRandom(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && len(f[1]) == 64 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// checkSnapshotUnique resumes the template's saved guest twice and compares
// what its RNG gives right after each resume: equal bytes mean every
// guest resumed from the snapshot shares its random state (keys, nonces,
// tokens). QEMU's vmgenid device (x86_64) makes the guest kernel reseed on
// resume. Without a saved guest there is nothing to compare: skipped,
// never held.
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
		out, err := in.Resume(ctx, randomScript)
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
