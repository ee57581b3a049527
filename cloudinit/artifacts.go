package cloudinit

import (
	"fmt"
	"strings"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// EnvArtifacts names the directory where the artifacts drive is mounted
// (read-only) in the environment of scripts and probes; set only for a
// template with artifacts.
const EnvArtifacts = "GUESTCATALOG_ARTIFACTS"

// ArtifactsStep is the name of the runner step that mounts the artifacts
// drive and installs from it; it runs before the template's steps.
const ArtifactsStep = "00-artifacts"

// artifactsScript renders the first provisioning step of a template with
// artifacts on arch: mount the read-only drive (by its label, as cloud-init
// finds the seed) at catalog.GuestArtifactsDir and copy each artifact with
// an install path into place. The host verified every file before it wrote
// the drive; the guest downloads nothing here.
func artifactsScript(t *catalog.Template, arch string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# guestcatalog: the template's artifacts, fetched and verified on the host,
# are on a read-only drive labelled %[1]s (generated).
set -eu
dir=%[2]s
mkdir -p "$dir"
if ! grep -q " $dir " /proc/mounts; then
	dev=/dev/disk/by-label/%[1]s
	[ -e "$dev" ] || dev=$(blkid -L %[1]s 2>/dev/null || findfs LABEL=%[1]s 2>/dev/null || true)
	if [ -z "$dev" ] || [ ! -e "$dev" ]; then
		echo "no drive labelled %[1]s: the artifacts drive is not attached" >&2
		exit 1
	fi
	mount -t iso9660 -o ro,nodev,nosuid "$dev" "$dir"
fi
`, catalog.ArtifactsLabel, catalog.GuestArtifactsDir)
	for i, a := range t.Artifacts {
		s, ok := a.SourceFor(arch)
		if !ok {
			return "", fmt.Errorf("artifacts[%d] (%s): no source for %s", i, a.Name, arch)
		}
		if s.Digest != "" {
			fmt.Fprintf(&b, "# %s: %s\n", a.Name, s.Digest)
		} else {
			fmt.Fprintf(&b, "# %s: digest from the checksum file, verified on the host\n", a.Name)
		}
		if a.Install == nil {
			continue
		}
		dst := exec.Quote(a.Install.Path)
		fmt.Fprintf(&b, "install -D -m %s \"$dir\"/%s %s\necho installed %s\n", a.Install.InstallMode(), exec.Quote(a.Name), dst, dst)
	}
	return b.String(), nil
}
