package catalog

import (
	"regexp"

	"github.com/guestcatalog/guestcatalog/framework/exec"
)

// PackageNamePattern is the rule of [ValidPackageName].
const PackageNamePattern = `^[A-Za-z0-9][A-Za-z0-9.+_:=~@/-]*$`

// DebianPackageNamePattern is the rule of [ValidDebianPackageName]: a
// Debian package name (policy 5.6.1), optionally with an arch qualifier or
// a version pin as apt accepts them.
const DebianPackageNamePattern = `^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$`

// ValidPackageName reports whether name can be a package of a `packages`
// step for any distro's package manager, with a version or arch qualifier
// (`docker.io`, `podman=5.4.2`, `gcc:arm64`): no spaces, no shell
// characters, no leading "-" that a tool would take for an option. It is
// the one definition of the rule: Validate and cloudinit's Render apply it.
func ValidPackageName(name string) bool {
	return regexp.MustCompile(PackageNamePattern).MatchString(name)
}

// ValidDebianPackageName reports whether name is a Debian package name,
// what a local image build (mmdebstrap) installs: images[].build.packages
// and, for a baked image, the template's packages. Validate and
// framework/imagebuild apply it.
func ValidDebianPackageName(name string) bool {
	return regexp.MustCompile(DebianPackageNamePattern).MatchString(name)
}

// ValidEnvName reports whether name can be an env or param name (params
// are exported as PARAM_<name>): the rule of framework/exec, where every
// command's environment is checked.
func ValidEnvName(name string) bool { return exec.ValidEnvName(name) }
