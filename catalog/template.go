package catalog

import (
	"runtime"
	"slices"
)

// HostArch is the host's architecture as templates name it: x86_64 or
// aarch64 (other GOARCH values are returned unchanged).
func HostArch() string {
	return archOf(runtime.GOARCH)
}

func archOf(goarch string) string {
	switch goarch {
	case "amd64":
		return ArchX8664
	case "arm64":
		return ArchAarch64
	}
	return goarch
}

// Arches lists the architectures the template has an image for, in the
// order of their first image.
func (t *Template) Arches() []string {
	var out []string
	for _, im := range t.Images {
		if !slices.Contains(out, im.Arch) {
			out = append(out, im.Arch)
		}
	}
	return out
}

// ImagesFor returns the images for arch, in the order to try them.
func (t *Template) ImagesFor(arch string) []Image {
	var out []Image
	for _, im := range t.Images {
		if im.Arch == arch {
			out = append(out, im)
		}
	}
	return out
}

// StepsFor returns the provisioning steps that apply to the template's
// distro and to arch, in order.
func (t *Template) StepsFor(arch string) []Step {
	var out []Step
	for _, s := range t.Provision {
		if s.When.matchesDistro(t.Distro) && s.When.matchesArch(arch) {
			out = append(out, s)
		}
	}
	return out
}

// ProbesFor returns the probes that apply to the template's distro and to
// arch, in order.
func (t *Template) ProbesFor(arch string) []Probe {
	var out []Probe
	for _, p := range t.Probes {
		if p.When.matchesDistro(t.Distro) && p.When.matchesArch(arch) {
			out = append(out, p)
		}
	}
	return out
}

// Matches reports whether a step or probe with this filter applies to the
// distro and arch: each non-empty list must contain the value (a nil When,
// or empty lists, match everything; an empty arch matches any).
func (w *When) Matches(d *Distro, arch string) bool {
	return w.matchesDistro(d) && w.matchesArch(arch)
}

func (w *When) filtersDistro() bool {
	return w != nil && (len(w.Families) > 0 || len(w.Distros) > 0)
}

func (w *When) matchesDistro(d *Distro) bool {
	if w == nil {
		return true
	}
	var name, family string
	if d != nil {
		name, family = d.Name, d.Family
	}
	return (len(w.Families) == 0 || slices.Contains(w.Families, family)) &&
		(len(w.Distros) == 0 || slices.Contains(w.Distros, name))
}

func (w *When) matchesArch(arch string) bool {
	return w == nil || len(w.Arches) == 0 || arch == "" || slices.Contains(w.Arches, arch)
}
