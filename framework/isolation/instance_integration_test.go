package isolation

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/config"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/instance"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
	"github.com/guestcatalog/guestcatalog/framework/qemu/qemutest"
)

// instanceTemplate is the template whose saved guest the instance tests
// start with instance.Up (no mounts, egress nat: a saved guest exists after
// `catalog verify --offline debian-containerd`).
const instanceTemplate = "debian-containerd"

// upInstance starts an instance of instanceTemplate in a store of its own
// and returns it with the saved guest it came from; it skips (saying how
// to make one) without a saved guest, as framework/instance's tests do.
func upInstance(t *testing.T) (*instance.Instance, *catalog.Template, config.Config, *instance.Guest) {
	t.Helper()
	qemutest.RequireTools(t, qemu.Binary(catalog.HostArch()), qemu.QemuImg)
	cfg, err := config.FromEnv(os.Environ())
	require.NoError(t, err)
	cfg.Offline = true
	ivs, err := cfg.Intervals()
	require.NoError(t, err)
	ctx := context.Background()
	cat, err := catalog.Load(ctx)
	require.NoError(t, err)
	tmpl, err := cat.Resolve(instanceTemplate)
	require.NoError(t, err)
	img, err := image.Resolve(ctx, tmpl, cfg.Arch, image.WithOffline(), image.WithCacheDir(cfg.CacheDir))
	if err != nil {
		t.Skipf("no image of %s in %s: %v (run: catalog verify --offline %s)", instanceTemplate, cfg.CacheDir, err, instanceTemplate)
	}
	g, err := instance.FindSaved(ctx, instance.SavedInput{CacheDir: cfg.CacheDir, Template: tmpl, Image: img, Arch: cfg.Arch})
	if errors.Is(err, instance.ErrNoSavedGuest) {
		t.Skipf("%v", err)
	}
	require.NoError(t, err)
	d, err := os.MkdirTemp("", "gci") // short: QEMU's QMP socket path limit
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	s, err := instance.Open(d)
	require.NoError(t, err)
	start := time.Now()
	inst, err := s.Up(ctx, instance.UpInput{Guest: g, Intervals: ivs})
	require.NoError(t, err)
	t.Logf("up in %.1fs: %s on %s", time.Since(start).Seconds(), inst.Name, inst.SSH.Addr)
	t.Cleanup(func() {
		_, err := s.Down(context.Background(), inst.Name, instance.DownInput{Intervals: ivs, Force: true})
		assert.NoError(t, err)
	})
	return inst, tmpl, cfg, g
}

// TestIntegrationInstanceProfile runs the isolation suite against an
// instance started with up (issue 15 item 4): the disk fills to ENOSPC at
// its declared size with the overlay within it, two resumes of its saved
// guest differ in random bytes; and with a declared disk smaller than the
// guest's (the leaky input) the disk property does not hold.
func TestIntegrationInstanceProfile(t *testing.T) {
	inst, tmpl, cfg, g := upInstance(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := NewCanaries(nil)
	require.NoError(t, err)
	defer c.Close()

	in, closeGuest, err := FromInstance(ctx, inst, tmpl, c, HostTargets(ctx, "deb.debian.org", "example.org"))
	require.NoError(t, err)
	defer closeGuest()
	assert.Equal(t, inst.RunDir+"/"+InstanceDisk, in.Overlay)
	assert.NotEmpty(t, in.PublishedPorts)
	ivs, err := cfg.Intervals()
	require.NoError(t, err)
	in.Resume = ResumeSaved(g, ivs)

	start := time.Now()
	p, err := Run(ctx, in)
	require.NoError(t, err)
	t.Logf("profile in %.1fs:\n%s", time.Since(start).Seconds(), p)
	disk := p.Get(PropResourcesDisk)
	assert.Equal(t, Held, disk.Status, disk.Detail)
	snap := p.Get(PropSnapshotUnique)
	if cfg.Arch == catalog.ArchX8664 {
		assert.Equal(t, Held, snap.Status, "vmgenid reseeds the resumed guests: %s", snap.Detail)
	}
	assert.Equal(t, Held, p.Get(PropCredNoToken).Status, p.Get(PropCredNoToken).Detail)
	// The fill is gone and trimmed: the overlay is back near where it was.
	alloc, _, err := allocated(in.Overlay)
	require.NoError(t, err)
	t.Logf("overlay after the check: %s allocated", gib(alloc))
	assert.Less(t, alloc, int64(3)<<30, "the fill was removed and trimmed from the overlay")

	// The failing input: a template declaring less disk than the guest has.
	leaky := *tmpl
	leaky.Disk = "5GiB"
	in.Template = &leaky
	st, detail := checkDisk(ctx, in)
	assert.Equal(t, NotHeld, st, detail)
	t.Logf("declared 5GiB: %s %s", st, detail)
}
