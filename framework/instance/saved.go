package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/intervals"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/provisioned"
)

// ErrNoSavedGuest: the template has no saved guest and SavedInput.Provision
// is off.
var ErrNoSavedGuest = errors.New("no saved guest")

// Guest is what an instance starts from: the template, its image, and the
// saved guest (a provisioned, ready guest in the cache) it resumes.
type Guest struct {
	Template *catalog.Template
	Image    *image.Artifact
	Arch     string
	Saved    *provisioned.Entry
	// Store and Key of the saved guest, for its lock.
	Store *provisioned.Store
	Key   string
}

// SavedInput says which saved guest to find (or make).
type SavedInput struct {
	// CacheDir holds <cache>/provisioned.
	CacheDir string
	// Template (resolved) and Image (image.Resolve) for Arch.
	Template *catalog.Template
	Image    *image.Artifact
	Arch     string
	// Provision: with no saved guest, boot and provision one exactly as
	// verify does and save it (minutes under TCG). Without, ErrNoSavedGuest.
	Provision bool
	// Accel for provisioning (auto, kvm, tcg); a saved guest resumes under
	// the accelerator it was saved with.
	Accel string
	// ArtifactsDir receives the provisioning run's logs ("" : a temporary
	// directory).
	ArtifactsDir string
	Intervals    *intervals.Set
	Logger       *slog.Logger
}

// FindSaved returns the template's saved guest, provisioning and saving
// one first when there is none and in.Provision is set. It uses the key
// verify uses (provisioned.TemplateKey), so each finds what the other saved.
func FindSaved(ctx context.Context, in SavedInput) (*Guest, error) {
	switch {
	case in.CacheDir == "":
		return nil, errors.New("instance.FindSaved: SavedInput.CacheDir is empty")
	case in.Template == nil:
		return nil, errors.New("instance.FindSaved: SavedInput.Template is nil")
	case in.Image == nil:
		return nil, errors.New("instance.FindSaved: SavedInput.Image is nil")
	}
	if in.Arch == "" {
		in.Arch = catalog.HostArch()
	}
	store, err := provisioned.Open(in.CacheDir)
	if err != nil {
		return nil, err
	}
	key, err := provisioned.TemplateKey(in.Template, in.Image, in.Arch)
	if err != nil {
		return nil, err
	}
	g := &Guest{Template: in.Template, Image: in.Image, Arch: in.Arch, Store: store, Key: key}
	if e, ok := store.Lookup(key); ok {
		g.Saved = e
		return g, nil
	}
	if !in.Provision {
		return nil, fmt.Errorf("%s (%s): %w: `catalog verify %s` provisions and saves one, or `catalog up` does", in.Template.Name, in.Arch, ErrNoSavedGuest, in.Template.Name)
	}
	unlock, err := store.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if e, ok := store.Lookup(key); ok { // saved while we waited for the lock
		g.Saved = e
		return g, nil
	}
	entry := in.Image.Entry
	cfg := machine.Config{
		Template:     in.Template,
		Image:        machineImage(in.Image, &entry),
		Arch:         in.Arch,
		Accel:        in.Accel,
		ArtifactsDir: in.ArtifactsDir,
		Intervals:    in.Intervals,
		Logger:       in.Logger,
	}
	start := time.Now()
	m, err := machine.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Stage()
	if err != nil {
		_ = m.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	accel := m.Accelerator().Used
	if err := unmountForSave(ctx, m); err != nil { // mounts.go: savevm needs the 9p shares unmounted
		st.Abort()
		_ = m.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if _, err := m.Snapshot(ctx, provisioned.SnapshotName, st.Dir); err != nil {
		st.Abort()
		_ = m.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("saving the provisioned guest: %w", err)
	}
	e, err := st.Commit(provisioned.Meta{
		Key: key, Template: in.Template.Name, Image: in.Image.Source, Digest: in.Image.Digest, Base: in.Image.Disk,
		Accel: accel, Snapshot: provisioned.SnapshotName, ProvisionSeconds: time.Since(start).Seconds(),
	})
	if err != nil {
		st.Abort()
		return nil, err
	}
	g.Saved = e
	return g, nil
}

func machineImage(img *image.Artifact, entry *catalog.Image) machine.Image {
	return machine.Image{Disk: img.Disk, Format: img.Format, Kernel: img.Kernel, Initrd: img.Initrd,
		Append: img.Append, Firmware: img.Firmware, Entry: entry}
}

// resumeConfig is the machine config that resumes g's saved guest.
func (g *Guest) resumeConfig() (machine.Config, error) {
	e := g.Saved
	if e == nil {
		return machine.Config{}, errors.New("instance: Guest.Saved is nil")
	}
	clientKey, err := os.ReadFile(e.Path(provisioned.FileClientKey))
	if err != nil {
		return machine.Config{}, err
	}
	hostKey, err := os.ReadFile(e.Path(provisioned.FileHostKey))
	if err != nil {
		return machine.Config{}, err
	}
	entry := g.Image.Entry
	return machine.Config{
		Template: g.Template,
		Image:    machineImage(g.Image, &entry),
		Arch:     g.Arch,
		Resume: &machine.Resume{
			Disk: e.Path(provisioned.FileDisk), Snapshot: e.Meta.Snapshot, Seed: e.Path(provisioned.FileSeed),
			ClientKey: clientKey, HostKey: hostKey, Accel: e.Meta.Accel,
		},
		// The saved guest was ready (its probes passed) when it was saved.
		SkipProbes: true,
	}, nil
}

// start resumes the saved guest under its lock: verify replaces an entry
// it cannot resume, and the copy of its disk must not see that happen.
func (g *Guest) start(ctx context.Context, cfg machine.Config) (*machine.Machine, error) {
	if g.Store != nil && g.Key != "" {
		unlock, err := g.Store.Lock(ctx, g.Key)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	return machine.Start(ctx, cfg)
}
