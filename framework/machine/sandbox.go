package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/cloudinit"
	"github.com/guestcatalog/guestcatalog/framework/netpolicy"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// Where a guest with egress proxy finds the framework's proxy: the only
// address its restricted network lets it reach (a guestfwd to the proxy on
// the host's loopback). Templates point http_proxy/apt at it.
const (
	GuestProxyAddr = "10.0.2.100"
	GuestProxyPort = 3128
)

// ArtifactProxyLog is the proxy's decisions (JSON), written at Close.
const ArtifactProxyLog = "proxy-decisions.json"

// SandboxMount is a template mount as the machine exports it.
type SandboxMount struct {
	catalog.Mount
	// HostPath is the resolved host directory (~ expanded, absolute).
	HostPath string `json:"hostPath"`
	// GuestPath is where the guest mounts it.
	GuestPath string `json:"guestPath"`
	// Tag is the 9p mount tag.
	Tag string `json:"tag"`
}

// ResolveMounts expands ~ in the template's mount locations to home (the
// invoking user's home directory when empty) and names each mount's tag
// and guest path.
func ResolveMounts(t *catalog.Template, home string) ([]SandboxMount, error) {
	if len(t.Mounts) == 0 {
		return nil, nil
	}
	if home == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("resolving ~ in mounts: %w", err)
		}
		home = u.HomeDir
	}
	guestHome := "/home/" + t.User.Name
	out := make([]SandboxMount, 0, len(t.Mounts))
	for i, m := range t.Mounts {
		p := m.Location
		if rest, ok := strings.CutPrefix(p, "~"); ok {
			p = filepath.Join(home, rest)
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("mounts[%d].location: %q is not absolute", i, m.Location)
		}
		out = append(out, SandboxMount{Mount: m, HostPath: filepath.Clean(p), GuestPath: m.GuestPath(guestHome), Tag: cloudinit.MountTag(i)})
	}
	return out, nil
}

// Mounts are the template's mounts as this machine exports them.
func (m *Machine) Mounts() []SandboxMount { return m.mounts }

// Proxy is the egress proxy serving this guest (nil unless egress proxy).
func (m *Machine) Proxy() *netpolicy.Proxy { return m.proxy }

// prepareSandbox resolves and creates the mount directories (a missing one
// is created 0700 when writable, 0755 when read-only, so that the guest
// user can read it) and, for egress proxy, starts the proxy. It returns
// what the QEMU spec needs.
func (m *Machine) prepareSandbox(ctx context.Context, spec *qemu.Spec) error {
	t := m.cfg.Template
	mounts, err := ResolveMounts(t, m.cfg.Home)
	if err != nil {
		return err
	}
	m.mounts = mounts
	for _, sm := range mounts {
		mode := os.FileMode(0o755)
		if sm.Writable {
			mode = 0o700
		}
		if err := os.MkdirAll(sm.HostPath, mode); err != nil {
			return fmt.Errorf("creating mount directory: %w", err)
		}
		spec.Shares = append(spec.Shares, qemu.Share{
			Tag: sm.Tag, HostPath: sm.HostPath,
			ReadOnly: !sm.Writable && !m.cfg.InsecureHostWritable,
		})
	}
	pol := t.NetworkPolicy()
	if !pol.Restricted() {
		return nil
	}
	spec.Restrict = true
	if pol.Egress != catalog.EgressProxy {
		return nil
	}
	if m.cfg.ProxyAddr != "" {
		spec.GuestForwards = append(spec.GuestForwards, qemu.GuestForward{
			GuestAddr: GuestProxyAddr, GuestPort: GuestProxyPort, Target: m.cfg.ProxyAddr,
		})
		return nil
	}
	p, err := netpolicy.Start(m.life, netpolicy.Options{
		Allow:        pol.Allow,
		HostLoopback: *pol.HostLoopback,
		Logger:       m.logger.With("part", "proxy"),
	})
	if err != nil {
		return err
	}
	m.proxy = p
	spec.GuestForwards = append(spec.GuestForwards, qemu.GuestForward{
		GuestAddr: GuestProxyAddr, GuestPort: GuestProxyPort, Target: p.Addr(),
	})
	return nil
}

// closeSandbox stops the proxy and keeps its decisions as an artifact.
func (m *Machine) closeSandbox() error {
	if m.proxy == nil {
		return nil
	}
	err := m.proxy.Close()
	if werr := writeJSON(filepath.Join(m.artifacts, ArtifactProxyLog), m.proxy.Decisions()); werr != nil {
		err = errors.Join(err, werr)
	}
	return err
}
