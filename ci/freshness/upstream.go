package freshness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// ErrUnsupported is returned for an image URL whose distro publishes no
// release metadata this package knows how to read.
var ErrUnsupported = errors.New("no release metadata known for this URL")

// Release is the newest image of an entry's line upstream.
type Release struct {
	Location string `json:"url"`
	Digest   string `json:"digest"`
	// From is the metadata file the digest was read from.
	From string `json:"from"`
}

// upstream knows where one distro publishes checksums and releases.
type upstream interface {
	// Distro is the catalog's distro name (the --distro filter).
	Distro() string
	// match reports whether location is one of this distro's image URLs.
	match(location string) bool
	// checksumURL is the checksum file that lists location.
	checksumURL(location string) string
	// latest finds the newest release of location's line: same release,
	// variant and arch.
	latest(ctx context.Context, c *Client, location string) (Release, error)
}

// upstreams are tried in order; URLs are recognised by their path, so
// mirrors of the same layout are recognised too.
var upstreams = []upstream{
	ubuntu{}, debian{}, fedora{},
	rhelLike{
		distro: "rocky",
		re:     regexp.MustCompile(`^(https?://.+/)(\d+)\.(\d+)/images/([a-z0-9_]+)/(Rocky-\d+-GenericCloud(?:-[A-Za-z]+)?)-\d+\.\d+-(\d{8}\.\d+)\.([a-z0-9_]+)\.qcow2$`),
		dir:    "%s%s/images/%s/",
	},
	rhelLike{
		distro: "almalinux",
		re:     regexp.MustCompile(`^(https?://.+/)(\d+)\.(\d+)/cloud/([a-z0-9_]+)/images/(AlmaLinux-\d+-GenericCloud)-\d+\.\d+-(\d{8}(?:\.\d+)?)\.([a-z0-9_]+)\.qcow2$`),
		dir:    "%s%s/cloud/%s/images/",
	},
	alpine{}, archLinux{},
}

// Distros lists the distros whose images Update can follow.
func Distros() []string {
	var out []string
	for _, u := range upstreams {
		out = append(out, u.Distro())
	}
	sort.Strings(out)
	return out
}

func upstreamFor(location string) upstream {
	for _, u := range upstreams {
		if u.match(location) {
			return u
		}
	}
	return nil
}

// DistroOf names the distro of an image URL, or "" when unknown.
func DistroOf(location string) string {
	if u := upstreamFor(location); u != nil {
		return u.Distro()
	}
	return ""
}

// Latest returns the newest release of the image line location belongs to.
func Latest(ctx context.Context, c *Client, location string) (Release, error) {
	u := upstreamFor(location)
	if u == nil {
		return Release{}, fmt.Errorf("%s: %w", location, ErrUnsupported)
	}
	r, err := u.latest(ctx, c, location)
	if err != nil {
		return Release{}, fmt.Errorf("finding the newest %s release of %s: %w", u.Distro(), path.Base(location), err)
	}
	return r, nil
}

func dirOf(location string) string { return location[:strings.LastIndex(location, "/")+1] }

// listing fetches and parses a directory index.
func listing(ctx context.Context, c *Client, dirURL string) ([]string, error) {
	b, err := c.Get(ctx, dirURL)
	if err != nil {
		return nil, err
	}
	return ParseListing(b), nil
}

// newestFirst sorts version strings, newest first.
func newestFirst(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool { return compareVersions(vs[i], vs[j]) > 0 })
}

// digestFrom reads file's digest from a checksum file, preferring algo.
func digestFrom(ctx context.Context, c *Client, sumsURL, file string, algos ...string) (string, error) {
	b, err := c.Get(ctx, sumsURL)
	if err != nil {
		return "", err
	}
	sums := ParseSums(b)
	for _, a := range algos {
		if h, ok := sums.Lookup(file, a); ok {
			return a + ":" + h, nil
		}
	}
	return "", fmt.Errorf("%s does not list %s: %w", sumsURL, file, errNotListed)
}

var errNotListed = errors.New("not listed")

// --- Ubuntu: simplestreams ---------------------------------------------------

type ubuntu struct{}

// https://cloud-images.ubuntu.com/[minimal/]releases/noble/release-20260705/ubuntu-24.04-server-cloudimg-amd64.img
var ubuntuRE = regexp.MustCompile(`^(https?://.+/)releases/([a-z]+)/release-(\d{8}(?:\.\d+)?)/(ubuntu-(\d+\.\d+)-(server|minimal)-cloudimg-([a-z0-9]+)\.img)$`)

func (ubuntu) Distro() string                { return "ubuntu" }
func (ubuntu) match(loc string) bool         { return ubuntuRE.MatchString(loc) }
func (ubuntu) checksumURL(loc string) string { return dirOf(loc) + "SHA256SUMS" }

// streamURL is the simplestreams product file for the images under base.
func (ubuntu) streamURL(base string) string {
	return base + "releases/streams/v1/com.ubuntu.cloud:released:download.json"
}

type simplestreams struct {
	Products map[string]struct {
		Versions map[string]struct {
			Items map[string]struct {
				Ftype  string `json:"ftype"`
				Path   string `json:"path"`
				SHA256 string `json:"sha256"`
			} `json:"items"`
		} `json:"versions"`
	} `json:"products"`
}

func (u ubuntu) latest(ctx context.Context, c *Client, loc string) (Release, error) {
	m := ubuntuRE.FindStringSubmatch(loc)
	base, codename, file, version, variant, arch := m[1], m[2], m[4], m[5], m[6], m[7]
	stream := u.streamURL(base)
	b, err := c.Get(ctx, stream)
	if err != nil {
		return Release{}, err
	}
	var ss simplestreams
	if err := json.Unmarshal(b, &ss); err != nil {
		return Release{}, fmt.Errorf("reading %s: %w", stream, err)
	}
	key := fmt.Sprintf("com.ubuntu.cloud:%s:%s:%s", variant, version, arch)
	prod, ok := ss.Products[key]
	if !ok {
		return Release{}, fmt.Errorf("%s has no product %s", stream, key)
	}
	versions := make([]string, 0, len(prod.Versions))
	for v := range prod.Versions {
		versions = append(versions, v)
	}
	newestFirst(versions)
	for _, v := range versions {
		for name, it := range prod.Versions[v].Items {
			if (it.Ftype != "disk1.img" && name != "disk1.img") || path.Base(it.Path) != file || len(it.SHA256) != 64 {
				continue
			}
			dir := path.Base(path.Dir(it.Path)) // release-20260720
			return Release{
				Location: base + "releases/" + codename + "/" + dir + "/" + file,
				Digest:   "sha256:" + strings.ToLower(it.SHA256),
				From:     stream,
			}, nil
		}
	}
	return Release{}, fmt.Errorf("%s: no version of %s has a disk1.img named %s", stream, key, file)
}

// --- Debian: dated directories + SHA512SUMS -----------------------------------

type debian struct{}

// https://cloud.debian.org/images/cloud/trixie/20260712-2537/debian-13-genericcloud-amd64-20260712-2537.qcow2
var debianRE = regexp.MustCompile(`^(https?://.+/)([a-z]+)/(\d{8}-\d{3,})/(debian-\d+-[a-z0-9]+-[a-z0-9]+)-(\d{8}-\d{3,})\.(qcow2|raw|tar\.xz)$`)
var debianDir = regexp.MustCompile(`^(\d{8}-\d{3,})/$`)

func (debian) Distro() string { return "debian" }
func (debian) match(loc string) bool {
	m := debianRE.FindStringSubmatch(loc)
	return m != nil && m[3] == m[5]
}
func (debian) checksumURL(loc string) string { return dirOf(loc) + "SHA512SUMS" }

// latestDirs is how many of the newest dated directories are searched: the
// newest may still be filling up (one arch published, the other not yet).
const latestDirs = 4

func (debian) latest(ctx context.Context, c *Client, loc string) (Release, error) {
	m := debianRE.FindStringSubmatch(loc)
	base, suite, stem, ext := m[1], m[2], m[4], m[6]
	suiteURL := base + suite + "/"
	entries, err := listing(ctx, c, suiteURL)
	if err != nil {
		return Release{}, err
	}
	var serials []string
	for _, e := range entries {
		if d := debianDir.FindStringSubmatch(e); d != nil {
			serials = append(serials, d[1])
		}
	}
	if len(serials) == 0 {
		return Release{}, fmt.Errorf("%s lists no dated directory", suiteURL)
	}
	newestFirst(serials)
	var errs []error
	for i, serial := range serials {
		if i == latestDirs {
			break
		}
		file := stem + "-" + serial + "." + ext
		sums := suiteURL + serial + "/SHA512SUMS"
		d, err := digestFrom(ctx, c, sums, file, "sha512")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return Release{Location: suiteURL + serial + "/" + file, Digest: d, From: sums}, nil
	}
	return Release{}, fmt.Errorf("none of the %d newest directories of %s has %s-<serial>.%s: %w", min(len(serials), latestDirs), suiteURL, stem, ext, errors.Join(errs...))
}

// --- Fedora: <release>-<respin> CHECKSUM files ---------------------------------

type fedora struct{}

// https://download.fedoraproject.org/pub/fedora/linux/releases/44/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-44-1.7.x86_64.qcow2
var fedoraRE = regexp.MustCompile(`^(https?://.+/)releases/(\d+)/Cloud/([a-z0-9_]+)/images/(Fedora-Cloud-Base-[A-Za-z0-9]+)-(\d+)-(\d+\.\d+)\.([a-z0-9_]+)\.qcow2$`)

func (fedora) Distro() string { return "fedora" }
func (fedora) match(loc string) bool {
	m := fedoraRE.FindStringSubmatch(loc)
	return m != nil && m[2] == m[5]
}
func (fedora) checksumURL(loc string) string {
	m := fedoraRE.FindStringSubmatch(loc)
	return dirOf(loc) + fmt.Sprintf("Fedora-Cloud-%s-%s-%s-CHECKSUM", m[2], m[6], m[7])
}

func (fedora) latest(ctx context.Context, c *Client, loc string) (Release, error) {
	m := fedoraRE.FindStringSubmatch(loc)
	rel, stem, arch := m[2], m[4], m[7]
	dir := dirOf(loc)
	entries, err := listing(ctx, c, dir)
	if err != nil {
		return Release{}, err
	}
	ck := regexp.MustCompile(`^Fedora-Cloud-` + regexp.QuoteMeta(rel) + `-(\d+\.\d+)-` + regexp.QuoteMeta(arch) + `-CHECKSUM$`)
	var respins []string
	for _, e := range entries {
		if r := ck.FindStringSubmatch(e); r != nil {
			respins = append(respins, r[1])
		}
	}
	if len(respins) == 0 {
		return Release{}, fmt.Errorf("%s lists no Fedora-Cloud-%s-*-%s-CHECKSUM", dir, rel, arch)
	}
	newestFirst(respins)
	var errs []error
	for _, r := range respins {
		file := fmt.Sprintf("%s-%s-%s.%s.qcow2", stem, rel, r, arch)
		sums := dir + fmt.Sprintf("Fedora-Cloud-%s-%s-%s-CHECKSUM", rel, r, arch)
		d, err := digestFrom(ctx, c, sums, file, "sha256")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return Release{Location: dir + file, Digest: d, From: sums}, nil
	}
	return Release{}, errors.Join(errs...)
}

// --- Rocky Linux, AlmaLinux: <major>.<minor>/…/CHECKSUM ------------------------

// rhelLike follows an Enterprise Linux rebuild across minor releases of one
// major release: the newest <major>.<minor>/ directory whose CHECKSUM lists
// the image, then the newest build date in it.
type rhelLike struct {
	distro string
	// re groups: 1 base, 2 major, 3 minor, 4 arch directory, 5 file stem,
	// 6 build, 7 arch.
	re *regexp.Regexp
	// dir formats the image directory from base, "<major>.<minor>" and the
	// arch directory.
	dir string
}

func (r rhelLike) Distro() string                { return r.distro }
func (r rhelLike) match(loc string) bool         { return r.re.MatchString(loc) }
func (r rhelLike) checksumURL(loc string) string { return dirOf(loc) + "CHECKSUM" }

func (r rhelLike) latest(ctx context.Context, c *Client, loc string) (Release, error) {
	m := r.re.FindStringSubmatch(loc)
	base, major, minor, archDir, stem, arch := m[1], m[2], m[3], m[4], m[5], m[7]
	minors := []string{minor}
	if entries, err := listing(ctx, c, base); err == nil {
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(major) + `\.(\d+)/$`)
		for _, e := range entries {
			if mm := re.FindStringSubmatch(e); mm != nil && mm[1] != minor && compareVersions(mm[1], minor) > 0 {
				minors = append(minors, mm[1])
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return Release{}, err
	}
	newestFirst(minors)
	var errs []error
	for _, mi := range minors {
		release := major + "." + mi
		dir := fmt.Sprintf(r.dir, base, release, archDir)
		b, err := c.Get(ctx, dir+"CHECKSUM")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fileRE := regexp.MustCompile(`^` + regexp.QuoteMeta(stem+"-"+release+"-") + `(\d{8}(?:\.\d+)?)` + regexp.QuoteMeta("."+arch+".qcow2") + `$`)
		var builds []string
		sums := ParseSums(b)
		for name := range sums {
			if fm := fileRE.FindStringSubmatch(name); fm != nil {
				if _, ok := sums.Lookup(name, "sha256"); ok {
					builds = append(builds, fm[1])
				}
			}
		}
		if len(builds) == 0 {
			errs = append(errs, fmt.Errorf("%sCHECKSUM lists no %s-%s-<build>.%s.qcow2", dir, stem, release, arch))
			continue
		}
		newestFirst(builds)
		file := stem + "-" + release + "-" + builds[0] + "." + arch + ".qcow2"
		h, _ := sums.Lookup(file, "sha256")
		return Release{Location: dir + file, Digest: "sha256:" + h, From: dir + "CHECKSUM"}, nil
	}
	return Release{}, errors.Join(errs...)
}

// --- Alpine: latest-releases.yaml + cloud/ listing + .sha512 -------------------

type alpine struct{}

// https://dl-cdn.alpinelinux.org/alpine/v3.23/releases/cloud/nocloud_alpine-3.23.4-x86_64-uefi-cloudinit-r0.qcow2
var alpineRE = regexp.MustCompile(`^(https?://.+/)v(\d+\.\d+)/releases/cloud/([a-z]+_alpine)-(\d+\.\d+\.\d+)-(x86_64|aarch64)-(.+)-r(\d+)\.qcow2$`)

func (alpine) Distro() string                { return "alpine" }
func (alpine) match(loc string) bool         { return alpineRE.MatchString(loc) }
func (alpine) checksumURL(loc string) string { return loc + ".sha512" }

type alpineRelease struct {
	Version string `yaml:"version"`
	Flavor  string `yaml:"flavor"`
}

func (alpine) latest(ctx context.Context, c *Client, loc string) (Release, error) {
	m := alpineRE.FindStringSubmatch(loc)
	base, branch, stem, version, arch, rest, rev := m[1], m[2], m[3], m[4], m[5], m[6], m[7]
	releases := base + "v" + branch + "/releases/"

	// The branch's newest point release, as its latest-releases.yaml says.
	latestURL := releases + arch + "/latest-releases.yaml"
	want := ""
	if b, err := c.Get(ctx, latestURL); err == nil {
		var rs []alpineRelease
		if err := yaml.Unmarshal(b, &rs); err != nil {
			return Release{}, fmt.Errorf("reading %s: %w", latestURL, err)
		}
		for _, r := range rs {
			if r.Version != "" && (want == "" || compareVersions(r.Version, want) > 0) {
				want = r.Version
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return Release{}, err
	}

	// The cloud images of that release, newest respin (-rN) first.
	cloud := releases + "cloud/"
	type cand struct{ version, rev string }
	var cands []cand
	entries, err := listing(ctx, c, cloud)
	if err != nil {
		return Release{}, err
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(stem+"-") + `(` + regexp.QuoteMeta(branch) + `\.\d+)` +
		regexp.QuoteMeta("-"+arch+"-"+rest+"-r") + `(\d+)\.qcow2$`)
	for _, e := range entries {
		if cm := re.FindStringSubmatch(e); cm != nil && (want == "" || cm[1] == want) {
			cands = append(cands, cand{cm[1], cm[2]})
		}
	}
	if len(cands) == 0 {
		if want == "" {
			want = version
		}
		return Release{}, fmt.Errorf("%s has no %s-%s-%s-%s-r<N>.qcow2 (the newest release, per %s, is %s)", cloud, stem, want, arch, rest, latestURL, want)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if c := compareVersions(cands[i].version, cands[j].version); c != 0 {
			return c > 0
		}
		return compareVersions(cands[i].rev, cands[j].rev) > 0
	})
	best := cands[0]
	if compareVersions(best.version, version) < 0 || (best.version == version && compareVersions(best.rev, rev) < 0) {
		best = cand{version, rev} // never go back
	}
	file := fmt.Sprintf("%s-%s-%s-%s-r%s.qcow2", stem, best.version, arch, rest, best.rev)
	d, err := digestFrom(ctx, c, cloud+file+".sha512", file, "sha512")
	if err != nil {
		return Release{}, err
	}
	return Release{Location: cloud + file, Digest: d, From: cloud + file + ".sha512"}, nil
}

// --- Arch Linux: images/latest/ + v<version>/ + .SHA256 ------------------------

type archLinux struct{}

// https://geo.mirror.pkgbuild.com/images/v20260715.556894/Arch-Linux-x86_64-cloudimg-20260715.556894.qcow2
var archRE = regexp.MustCompile(`^(https?://.+/)v(\d{8}\.\d+)/(Arch-Linux-[a-z0-9_]+-[a-z]+)-(\d{8}\.\d+)\.qcow2$`)

func (archLinux) Distro() string { return "archlinux" }
func (archLinux) match(loc string) bool {
	m := archRE.FindStringSubmatch(loc)
	return m != nil && m[2] == m[4]
}
func (archLinux) checksumURL(loc string) string { return loc + ".SHA256" }

func (archLinux) latest(ctx context.Context, c *Client, loc string) (Release, error) {
	m := archRE.FindStringSubmatch(loc)
	base, current, stem := m[1], m[2], m[3]
	newest := ""
	// latest/ holds the newest build under its versioned name.
	if entries, err := listing(ctx, c, base+"latest/"); err == nil {
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(stem+"-") + `(\d{8}\.\d+)\.qcow2$`)
		for _, e := range entries {
			if v := re.FindStringSubmatch(e); v != nil && (newest == "" || compareVersions(v[1], newest) > 0) {
				newest = v[1]
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return Release{}, err
	}
	if newest == "" { // else the newest v<version>/ directory
		entries, err := listing(ctx, c, base)
		if err != nil {
			return Release{}, err
		}
		re := regexp.MustCompile(`^v(\d{8}\.\d+)/$`)
		for _, e := range entries {
			if v := re.FindStringSubmatch(e); v != nil && (newest == "" || compareVersions(v[1], newest) > 0) {
				newest = v[1]
			}
		}
	}
	if newest == "" {
		return Release{}, fmt.Errorf("neither %slatest/ nor %s names a %s build", base, base, stem)
	}
	if compareVersions(newest, current) < 0 {
		newest = current
	}
	location := base + "v" + newest + "/" + stem + "-" + newest + ".qcow2"
	d, err := digestFrom(ctx, c, location+".SHA256", path.Base(location), "sha256")
	if err != nil {
		return Release{}, err
	}
	return Release{Location: location, Digest: d, From: location + ".SHA256"}, nil
}
