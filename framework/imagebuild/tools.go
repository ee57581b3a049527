package imagebuild

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
)

// ErrToolMissing is wrapped when a program the builder runs is not
// installed; the message names the Debian packages to install.
var ErrToolMissing = errors.New("image build tools missing")

// ErrNeedRoot is returned when the builder does not run as root: mmdebstrap's
// root mode keeps the files' owners, which `mkfs.ext4 -d` copies into the
// image (an unprivileged build would need tar support in mkfs, e2fsprogs ≥
// 1.47.1).
var ErrNeedRoot = errors.New("local image builds need root (mmdebstrap --mode=root)")

// Tool is a program the builder runs, and the Debian package that has it.
type Tool struct {
	Command string
	Package string
}

// Tools() are the programs a build needs.
func Tools() []Tool {
	return []Tool{
		{"mmdebstrap", "mmdebstrap"},
		{"mkfs.ext4", "e2fsprogs"},
		{"qemu-img", "qemu-utils"},
		{"dpkg-query", "dpkg"},
	}
}

// ForeignTools are needed on top of Tools for a foreign-arch build:
// mmdebstrap refuses a foreign architecture without arch-test.
func ForeignTools() []Tool { return []Tool{{"arch-test", "arch-test"}} }

// sbinDirs are searched after PATH.
func sbinDirs() []string { return []string{"/usr/sbin", "/sbin"} }

// LookTool finds a tool in PATH, then in /usr/sbin and /sbin (not in the
// PATH of every user, but where e2fsprogs installs mkfs.ext4).
func LookTool(name string) (string, error) { return lookTool(name, sbinDirs()) }

func lookTool(name string, sbin []string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbin {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// CheckTools finds every tool a build needs and returns their paths by
// command name, or one error naming every missing tool and its package.
func CheckTools() (map[string]string, error) { return CheckToolsFor("") }

// CheckToolsFor is CheckTools for a build of arch on this host: a foreign
// arch needs ForeignTools too.
func CheckToolsFor(arch string) (map[string]string, error) {
	return checkTools(toolsFor(arch), sbinDirs())
}

func toolsFor(arch string) []Tool {
	if arch != "" && arch != catalog.HostArch() {
		return append(Tools(), ForeignTools()...)
	}
	return Tools()
}

func checkTools(tools []Tool, sbin []string) (map[string]string, error) {
	paths := map[string]string{}
	var missing, pkgs []string
	for _, t := range tools {
		p, err := lookTool(t.Command, sbin)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", t.Command, t.Package))
			pkgs = append(pkgs, t.Package)
			continue
		}
		paths[t.Command] = p
	}
	if len(missing) > 0 {
		return paths, fmt.Errorf("%w: %s not found; install with: apt-get install -y %s",
			ErrToolMissing, strings.Join(missing, ", "), strings.Join(pkgs, " "))
	}
	return paths, nil
}
