package framework

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	"golang.org/x/crypto/ssh"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/download"
	"github.com/guestcatalog/guestcatalog/framework/image"
	"github.com/guestcatalog/guestcatalog/framework/machine"
	"github.com/guestcatalog/guestcatalog/framework/provisioned"
	"github.com/guestcatalog/guestcatalog/framework/report"
)

// Boot gets the template's image, boots and provisions its guest and waits
// until it is ready; it registers the guest's shutdown with DeferCleanup.
// What cannot run here (offline, an unreachable installer or image) skips
// the template's specs with the reason; a guest that does not become ready
// fails them with the phase, the console tail and the artifacts path.
func Boot(ctx SpecContext, name string) *Guest {
	GinkgoHelper()
	bootStart := time.Now()
	cfg := current()
	t := MustResolve(name)
	rep := reportFor(t.Name)
	artifacts := filepath.Join(cfg.ArtifactsDir, t.Name)
	rep.Artifacts = artifacts
	logger := bootLogger(cfg)

	if reason := unmetRequirement(ctx, cfg, t); reason != "" {
		Skip(reason)
	}

	imageStart := time.Now()
	img, err := image.Resolve(ctx, t, cfg.Arch, imageOptions(cfg, logger)...)
	if err != nil {
		if reason, ok := image.Unavailable(err); ok {
			Skip(fmt.Sprintf("no image for %s/%s here: %s", t.Name, cfg.Arch, reason))
		}
		Fail(fmt.Sprintf("template %s, phase image: %v", t.Name, err))
	}
	rep.Image = report.Image{Source: img.Source, Digest: img.Digest}
	rep.Phases = []report.Phase{{Name: "image", Seconds: time.Since(imageStart).Seconds(), Result: report.Pass}}
	if img.Recipe != nil {
		rep.Image.Recipe = img.Recipe
	}

	ivals := intervalsSet()
	entry := img.Entry
	mcfg := machine.Config{
		Template:      t,
		Image:         machine.Image{Disk: img.Disk, Format: img.Format, Kernel: img.Kernel, Initrd: img.Initrd, Append: img.Append, Firmware: img.Firmware, Entry: &entry},
		Arch:          cfg.Arch,
		Accel:         cfg.Accel,
		ArtifactsDir:  artifacts,
		Intervals:     ivals,
		Logger:        logger,
		KeepOnFailure: cfg.KeepOnFailure,
	}
	m, err := startMachine(ctx, cfg, t, img, mcfg, rep)
	if m != nil {
		recordMachine(rep, m)
		DeferCleanup(func(ctx SpecContext) {
			if cfg.KeepOnFailure && (CurrentSpecReport().Failed() || rep.Result == report.Fail) {
				keep(t.Name, m)
				return
			}
			Expect(m.Close(ctx)).To(Succeed(), "shutting down %s", t.Name)
		}, NodeTimeout(2*Interval("default/shutdown")))
	}
	if err != nil {
		var pe *machine.PhaseError
		if errors.As(err, &pe) {
			Fail(pe.Error())
		}
		Fail(fmt.Sprintf("template %s: %v (artifacts: %s)", t.Name, err, artifacts))
	}
	stateMu.Lock()
	usedAccel = m.Accelerator().Used
	stateMu.Unlock()

	recordBoot(t.Name, rep, time.Since(bootStart))
	g := &Guest{Template: t, Arch: cfg.Arch, Hostname: cloudinit.DefaultHostname(t.Name), Report: rep, runner: m.Runner(), artifacts: artifacts}
	if t.Engine != nil && t.Engine.VersionCommand != "" {
		res, err := g.ExecRoot(ctx, t.Engine.VersionCommand)
		if err == nil {
			g.EngineVersion = strings.TrimSpace(string(res.Stdout))
			rep.EngineVersion = g.EngineVersion
		}
	}
	return g
}

func recordMachine(rep *report.Template, m *machine.Machine) {
	a := m.Accelerator()
	rep.Accelerator = a.Used
	rep.AccelReason = a.Reason
	rep.QEMUVersion = m.QEMUVersion()
	rep.HostArch = catalog.HostArch()
	if rep.Arch != "" && rep.Arch != rep.HostArch {
		rep.ForeignArch = true
		rep.EmulationFactor = intervalsSet().ForGuest(rep.Arch, rep.HostArch).Factor()
	}
}

func phaseResult(s string) report.Result {
	if s == "ok" {
		return report.Pass
	}
	return report.Fail
}

// bootLogger logs boot progress to the spec's GinkgoWriter (shown with a
// failure, or live with -ginkgo.v), or to the CLI's progress stream with -v.
func bootLogger(cfg *Config) *slog.Logger {
	var w io.Writer = GinkgoWriter
	if cfg.Verbose && cfg.Progress != nil {
		w = cfg.Progress
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func imageOptions(cfg *Config, logger *slog.Logger) []image.Option {
	opts := []image.Option{image.WithLogger(logger)}
	if cfg.Offline {
		opts = append(opts, image.WithOffline())
	}
	if cfg.CacheDir != "" {
		opts = append(opts, image.WithCacheDir(cfg.CacheDir))
	}
	if len(cfg.Mirrors) > 0 {
		opts = append(opts, image.WithMirrors(cfg.Mirrors))
	}
	if cfg.Progress != nil {
		opts = append(opts, image.WithProgress(cfg.Progress))
	}
	return opts
}

// unmetRequirement checks what the template's provisioning needs from
// outside (a vendor installer's URL) before anything boots, and returns the
// reason to skip, or "".
func unmetRequirement(ctx context.Context, cfg *Config, t *catalog.Template) string {
	if t.Engine == nil {
		return ""
	}
	// --offline is about images (no download); the guest's network is
	// what it is, so a requirement is judged by reaching it, offline or not.
	for _, r := range t.Engine.Requires {
		url := r.URL
		if url == "" {
			url = "https://deb.debian.org/"
		}
		if err := reachable(ctx, url); err != nil {
			return fmt.Sprintf("%s (%s: %v)", r.Reason, url, err)
		}
	}
	return ""
}

// reachable is a bounded HEAD request: the guest's user-mode network goes
// out through this host, so what the host cannot reach the guest cannot.
func reachable(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}

// startMachine boots the guest. With reuse on, a guest provisioned before
// from the same inputs is resumed from its snapshot (seconds, no
// provisioning); otherwise the guest is provisioned, saved (snapshot of the
// ready guest, kept in the cache) and resumed from that snapshot, so the
// cold and the warm run hand the specs the same guest.
func startMachine(ctx context.Context, cfg *Config, t *catalog.Template, img *image.Artifact, mcfg machine.Config, rep *report.Template) (*machine.Machine, error) {
	rep.Provisioned = "fresh"
	if !cfg.Reuse {
		m, err := machine.Start(ctx, mcfg)
		if m != nil {
			appendPhases(rep, m, "")
		}
		return m, err
	}
	root := cfg.CacheDir
	if root == "" {
		var err error
		if root, err = download.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	store, err := provisioned.Open(root)
	if err != nil {
		return nil, err
	}
	key, err := provisionKey(t, img, mcfg.Arch)
	if err != nil {
		return nil, err
	}
	unlock, err := store.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	log := mcfg.Logger
	if e, ok := store.Lookup(key); ok {
		m, err := resume(ctx, mcfg, e)
		if err == nil {
			rep.Provisioned = "reused"
			appendPhases(rep, m, "")
			return m, nil
		}
		// A snapshot this QEMU cannot load is not a verdict on the
		// template: provision from scratch and replace it.
		log.Warn("resuming the provisioned guest failed; provisioning from scratch", "entry", e.Dir, "err", err)
		if m != nil {
			_ = m.Close(ctx)
		}
		_ = os.RemoveAll(e.Dir)
	}
	fresh := mcfg
	fresh.ArtifactsDir = filepath.Join(mcfg.ArtifactsDir, "provision")
	start := time.Now()
	m, err := machine.Start(ctx, fresh)
	if m != nil {
		appendPhases(rep, m, "")
	}
	if err != nil {
		return m, err
	}
	st, err := store.Stage()
	if err != nil {
		return m, err
	}
	accel := m.Accelerator().Used
	if _, err := m.Snapshot(ctx, provisioned.SnapshotName, st.Dir); err != nil {
		st.Abort()
		_ = m.Close(ctx) // no-op when Snapshot got as far as closing it
		return nil, fmt.Errorf("keeping the provisioned guest: %w", err)
	}
	e, err := st.Commit(provisioned.Meta{
		Key: key, Template: t.Name, Image: img.Source, Digest: img.Digest, Base: img.Disk,
		Accel: accel, Snapshot: provisioned.SnapshotName, ProvisionSeconds: time.Since(start).Seconds(),
	})
	if err != nil {
		st.Abort()
		return nil, err
	}
	log.Info("provisioned guest kept for the next run", "entry", e.Dir)
	m2, err := resume(ctx, mcfg, e)
	if m2 != nil {
		appendPhases(rep, m2, "resume/")
	}
	return m2, err
}

func resume(ctx context.Context, mcfg machine.Config, e *provisioned.Entry) (*machine.Machine, error) {
	clientKey, err := os.ReadFile(e.Path(provisioned.FileClientKey))
	if err != nil {
		return nil, err
	}
	hostKey, err := os.ReadFile(e.Path(provisioned.FileHostKey))
	if err != nil {
		return nil, err
	}
	mcfg.Resume = &machine.Resume{
		Disk: e.Path(provisioned.FileDisk), Snapshot: e.Meta.Snapshot, Seed: e.Path(provisioned.FileSeed),
		ClientKey: clientKey, HostKey: hostKey, Accel: e.Meta.Accel,
	}
	return machine.Start(ctx, mcfg)
}

// provisionKey hashes what provisioning depends on: the image (digest and
// source), the resolved template, the user-data it renders to (with fixed
// placeholder keys) and the arch.
func provisionKey(t *catalog.Template, img *image.Artifact, arch string) (string, error) {
	tj, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	seed, err := cloudinit.Render(t, cloudinit.Input{Arch: arch, Image: img.Entry, InstanceID: "iid-key",
		AuthorizedKeys: []string{placeholderKey()}})
	if err != nil {
		return "", fmt.Errorf("rendering user-data for the provisioned-disk key: %w", err)
	}
	return provisioned.Key(img.Source, img.Digest, string(tj), string(seed.UserData), string(seed.NetworkConfig), arch), nil
}

// appendPhases adds a machine's readiness phases to the report.
func appendPhases(rep *report.Template, m *machine.Machine, prefix string) {
	for _, p := range m.Phases() {
		rep.Phases = append(rep.Phases, report.Phase{Name: prefix + p.Name, Seconds: p.Duration.Seconds(), Result: phaseResult(p.Result)})
	}
}

// placeholderKey is a fixed public key standing in for the per-run keys
// when user-data is rendered for the provisioned-disk key.
func placeholderKey() string {
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

var (
	keptMu sync.Mutex
	kept   []*machine.Machine
)

// keep leaves a failed guest running for inspection (KeepOnFailure) and
// says how to get in.
func keep(name string, m *machine.Machine) {
	keptMu.Lock()
	kept = append(kept, m)
	keptMu.Unlock()
	w := io.Writer(GinkgoWriter)
	if p := current().Progress; p != nil {
		w = p
	}
	fmt.Fprintf(w, "%s failed; its guest is kept running. Get in with:\n    %s\n", name, m.SSHCommand())
}

// Kept returns the guests kept running after a failure; the caller closes
// them (QEMU dies with the process that started it).
func Kept() []*machine.Machine {
	keptMu.Lock()
	defer keptMu.Unlock()
	return append([]*machine.Machine(nil), kept...)
}
