package provisioned

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// ResumeConfig returns cfg set up to resume the entry's guest: the
// entry's identity checked (Verify), its disk moved onto cfg.Image.Disk
// when the cache moved (Relocate), its keys read. Set
// cfg.Resume.AfterLoad afterwards for QMP changes before the guest runs.
func (e *Entry) ResumeConfig(ctx context.Context, cfg machine.Config) (machine.Config, error) {
	if err := e.Verify(); err != nil {
		return cfg, err
	}
	if err := e.Relocate(ctx, cfg.Image.Disk, cfg.Image.Format); err != nil {
		return cfg, err
	}
	clientKey, err := os.ReadFile(e.Path(FileClientKey))
	if err != nil {
		return cfg, err
	}
	hostKey, err := os.ReadFile(e.Path(FileHostKey))
	if err != nil {
		return cfg, err
	}
	cfg.Resume = &machine.Resume{
		Disk: e.Path(FileDisk), State: e.Path(FileState), RAM: e.Path(FileRAM), Seed: e.Path(FileSeed),
		ClientKey: clientKey, HostKey: hostKey, Accel: e.Meta.Accel, ClockAtLogin: e.Meta.ClockAtLogin,
	}
	return cfg, nil
}

// ProvisionInput says what to provision and save.
type ProvisionInput struct {
	Store *Store
	Key   string
	// Config boots the guest (Saveable is set here).
	Config machine.Config
	// Meta describes the entry: Template, Image, Digest, Base (Key, Accel
	// and ProvisionSeconds are filled in).
	Meta Meta
	// BeforeSave, if set, runs on the ready guest before it is saved (for
	// example to unmount shares, which block migration).
	BeforeSave func(context.Context, *machine.Machine) error
}

// Provision boots and provisions a guest exactly as verify does, saves it
// (machine.Save) and commits it as the entry for in.Key. The caller holds
// the key's lock. The machine is returned (stopped) even on failure, for
// its phases and attempts; nil if it never started.
func Provision(ctx context.Context, in ProvisionInput) (*Entry, *machine.Machine, error) {
	if in.Store == nil || in.Key == "" {
		return nil, nil, errors.New("provisioned.Provision: Store and Key are required")
	}
	cfg := in.Config
	cfg.Saveable = true
	start := time.Now()
	m, err := machine.Start(ctx, cfg)
	if err != nil {
		return nil, m, err
	}
	cctx := context.WithoutCancel(ctx)
	st, err := in.Store.Stage()
	if err != nil {
		_ = m.Close(cctx)
		return nil, m, err
	}
	if in.BeforeSave != nil {
		if err := in.BeforeSave(ctx, m); err != nil {
			st.Abort()
			_ = m.Close(cctx)
			return nil, m, err
		}
	}
	accel := m.Accelerator().Used
	if _, err := m.Save(ctx, st.Dir); err != nil {
		st.Abort()
		_ = m.Close(cctx) // a no-op when Save got as far as closing it
		return nil, m, fmt.Errorf("saving the provisioned guest: %w", err)
	}
	meta := in.Meta
	meta.Key, meta.Accel, meta.ProvisionSeconds = in.Key, accel, time.Since(start).Seconds()
	meta.ClockAtLogin = m.ClockAtLogin()
	e, err := st.Commit(meta)
	if err != nil {
		st.Abort()
		return nil, m, err
	}
	return e, m, nil
}
