package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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
	// ArtifactDrive is attached read-only on resume ("" : none).
	ArtifactDrive string
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
	// ArtifactDrive is the template's vendor-artifacts drive
	// (framework/artifacts.Prepare; Template then pinned with
	// artifacts.Pin), "" for none. A saved guest is only resumed with the
	// drive it was provisioned with: it is part of the key, as in verify.
	ArtifactDrive string
	Intervals     *intervals.Set
	Logger        *slog.Logger
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
	key = provisioned.DriveKey(key, in.ArtifactDrive)
	g := &Guest{Template: in.Template, Image: in.Image, Arch: in.Arch, Store: store, Key: key, ArtifactDrive: in.ArtifactDrive}
	if e, ok := store.Lookup(key, in.Image.Disk); ok {
		g.Saved = e
		return g, nil
	}
	if !in.Provision {
		if old := store.Outdated(in.Template.Name); len(old) > 0 {
			return nil, fmt.Errorf("%s (%s): %w: the saved guest %s is in format %s, which this version does not resume (%s): `catalog verify %s` or `catalog up` saves it anew",
				in.Template.Name, in.Arch, ErrNoSavedGuest, old[0].Dir, old[0].Meta.Format, provisioned.Format, in.Template.Name)
		}
		return nil, fmt.Errorf("%s (%s): %w: `catalog verify %s` provisions and saves one, or `catalog up` does", in.Template.Name, in.Arch, ErrNoSavedGuest, in.Template.Name)
	}
	unlock, err := store.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if e, ok := store.Lookup(key, in.Image.Disk); ok { // saved while we waited for the lock
		g.Saved = e
		return g, nil
	}
	for _, old := range store.Outdated(in.Template.Name) {
		in.logger().Warn("saved guest in an old format is not resumed; provisioning anew", "entry", old.Dir, "format", old.Meta.Format, "want", provisioned.Format)
	}
	entry := in.Image.Entry
	e, _, err := provisioned.Provision(ctx, provisioned.ProvisionInput{Store: store, Key: key,
		Config: machine.Config{
			Template:      in.Template,
			Image:         machineImage(in.Image, &entry),
			Arch:          in.Arch,
			Accel:         in.Accel,
			ArtifactsDir:  in.ArtifactsDir,
			ArtifactDrive: in.ArtifactDrive,
			Intervals:     in.Intervals,
			Logger:        in.Logger,
		},
		// savevm/migration refuses while a 9p share is mounted (mounts.go).
		BeforeSave: unmountForSave,
		Meta:       provisioned.Meta{Template: in.Template.Name, Image: in.Image.Source, Digest: in.Image.Digest, Base: in.Image.Disk}})
	if err != nil {
		return nil, err
	}
	g.Saved = e
	return g, nil
}

func (in SavedInput) logger() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func machineImage(img *image.Artifact, entry *catalog.Image) machine.Image {
	return machine.Image{Disk: img.Disk, Format: img.Format, Kernel: img.Kernel, Initrd: img.Initrd,
		Append: img.Append, Firmware: img.Firmware, Entry: entry}
}

// resumeConfig is the machine config that resumes g's saved guest.
func (g *Guest) resumeConfig(ctx context.Context) (machine.Config, error) {
	e := g.Saved
	if e == nil {
		return machine.Config{}, errors.New("instance: Guest.Saved is nil")
	}
	entry := g.Image.Entry
	return e.ResumeConfig(ctx, machine.Config{
		Template: g.Template,
		Image:    machineImage(g.Image, &entry),
		Arch:     g.Arch,
		// The same read-only drive it was provisioned with (part of Key).
		ArtifactDrive: g.ArtifactDrive,
		// The saved guest was ready (its probes passed) when it was saved.
		SkipProbes: true,
	})
}

// start resumes the saved guest under its lock: verify replaces an entry
// it cannot resume, and QEMU must have opened its files before that.
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
