package instance

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/exec"
	"github.com/guestcatalog/guestcatalog/framework/machine"
)

func TestParseMountAccepts(t *testing.T) {
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	t.Chdir(filepath.Dir(dir))
	for _, tc := range []struct {
		in   string
		want MountSpec
	}{
		{dir + ":/workspace", MountSpec{HostPath: real, GuestPath: "/workspace"}},
		{dir + ":/workspace:rw", MountSpec{HostPath: real, GuestPath: "/workspace"}},
		{dir + ":/mnt/ref:ro", MountSpec{HostPath: real, GuestPath: "/mnt/ref", ReadOnly: true}},
		// Relative to the working directory; a symlink is resolved.
		{filepath.Base(dir) + ":/w", MountSpec{HostPath: real, GuestPath: "/w"}},
		{link + ":/home/guest/src", MountSpec{HostPath: real, GuestPath: "/home/guest/src"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMount(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// Each value a --mount refuses, and what the message says about it.
func TestParseMountRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, tc := range []struct {
		name, in, msg string
	}{
		{"no guest path", dir, "want HOST:GUEST[:ro]"},
		{"empty host", ":/workspace", "the host directory is empty"},
		{"empty guest", dir + ":", "the guest path is empty"},
		{"relative guest", dir + ":workspace", `the guest path "workspace" is not absolute`},
		{"unclean guest", dir + ":/mnt/../workspace", "is not clean"},
		{"trailing slash", dir + ":/workspace/", "is not clean"},
		{"space in guest", dir + ":/my work", "holds a character other than"},
		{"comma in guest", dir + ":/a,b", "holds a character other than"},
		{"system dir", dir + ":/etc", "/etc is a guest system directory"},
		{"root", dir + ":/", "/ is a guest system directory"},
		{"home", dir + ":/home", "/home is a guest system directory"},
		{"bad mode", dir + ":/workspace:rox", `the third field is "rox": want ro or rw`},
		{"colon in path", dir + ":/a:b:ro", "4 fields"},
		{"colon in host path", "/tmp/a:b:/workspace", `the third field is "/workspace"`},
		{"missing host dir", filepath.Join(dir, "nope") + ":/workspace", "no such file or directory"},
		{"host file", file + ":/workspace", "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMount(tc.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadMount)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", tc.in), "the message names the value")
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestParseMountsTogether(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ms, err := ParseMounts([]string{a + ":/workspace", b + ":/reference:ro"})
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.True(t, ms[1].ReadOnly)

	t.Run("duplicate guest path", func(t *testing.T) {
		_, err := ParseMounts([]string{a + ":/workspace", b + ":/workspace:ro"})
		require.ErrorIs(t, err, ErrBadMount)
		assert.Contains(t, err.Error(), fmt.Sprintf("%q: /workspace is already mounted by --mount", b+":/workspace:ro"))
	})
	t.Run("nested guest paths", func(t *testing.T) {
		_, err := ParseMounts([]string{a + ":/workspace", b + ":/workspace/ref"})
		require.ErrorIs(t, err, ErrBadMount)
		assert.Contains(t, err.Error(), "/workspace/ref and /workspace")
		assert.Contains(t, err.Error(), "nest")
	})
	t.Run("a sibling with a common prefix is not nested", func(t *testing.T) {
		_, err := ParseMounts([]string{a + ":/work", b + ":/workspace"})
		require.NoError(t, err)
	})
	t.Run("too many", func(t *testing.T) {
		var vals []string
		for i := range MaxMountFlags + 1 {
			vals = append(vals, fmt.Sprintf("%s:/m%d", a, i))
		}
		_, err := ParseMounts(vals)
		require.ErrorIs(t, err, ErrBadMount)
		assert.Contains(t, err.Error(), "9 values, at most 8")
	})
	t.Run("every bad value is reported", func(t *testing.T) {
		_, err := ParseMounts([]string{a + ":etc", a + ":/etc"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is not absolute")
		assert.Contains(t, err.Error(), "guest system directory")
	})
}

func sandboxTemplate() *catalog.Template {
	return &catalog.Template{Name: "sbx", User: &catalog.User{Name: "guest"}, Mounts: []catalog.Mount{
		{Location: "/srv/ws", MountPoint: "/workspace", Writable: true},
		{Location: "/srv/ref", MountPoint: "/reference"},
	}}
}

func TestWithMounts(t *testing.T) {
	t.Run("none: the template's mounts only", func(t *testing.T) {
		cfg := machine.Config{Template: sandboxTemplate()}
		p, err := withMounts(&cfg, nil)
		require.NoError(t, err)
		assert.False(t, p.Rescan)
		assert.Empty(t, cfg.ExtraQEMUArgs)
		assert.Equal(t, []Mount{
			{HostPath: "/srv/ws", GuestPath: "/workspace", Writable: true, Tag: "mount0", Source: MountFromTemplate},
			{HostPath: "/srv/ref", GuestPath: "/reference", Tag: "mount1", Source: MountFromTemplate},
		}, p.Mounts)
	})
	t.Run("a template mount's guest path replaces its host directory", func(t *testing.T) {
		orig := sandboxTemplate()
		cfg := machine.Config{Template: orig}
		p, err := withMounts(&cfg, []MountSpec{{HostPath: "/home/me/proj", GuestPath: "/workspace", ReadOnly: true}})
		require.NoError(t, err)
		assert.False(t, p.Rescan, "the share's device is in the saved guest")
		assert.Empty(t, cfg.ExtraQEMUArgs)
		assert.Equal(t, Mount{HostPath: "/home/me/proj", GuestPath: "/workspace", Tag: "mount0", Source: MountFromFlag}, p.Mounts[0])
		assert.Equal(t, "/home/me/proj", cfg.Template.Mounts[0].Location)
		assert.False(t, cfg.Template.Mounts[0].Writable)
		assert.Equal(t, "/srv/ws", orig.Mounts[0].Location, "the guest's template is not changed")
	})
	t.Run("another guest path is a new share after the saved devices", func(t *testing.T) {
		cfg := machine.Config{Template: &catalog.Template{Name: "plain", User: &catalog.User{Name: "guest"}}}
		p, err := withMounts(&cfg, []MountSpec{
			{HostPath: "/home/me/a,b", GuestPath: "/mnt/a"},
			{HostPath: "/home/me/ref", GuestPath: "/mnt/ref", ReadOnly: true},
		})
		require.NoError(t, err)
		assert.True(t, p.Rescan)
		assert.Equal(t, []string{
			"-fsdev", "local,id=xfsdev0,path=/home/me/a,,b,security_model=mapped-xattr,multidevs=remap",
			"-device", "virtio-9p-pci,fsdev=xfsdev0,mount_tag=xmount0",
			"-fsdev", "local,id=xfsdev1,path=/home/me/ref,security_model=none,readonly=on,multidevs=remap",
			"-device", "virtio-9p-pci,fsdev=xfsdev1,mount_tag=xmount1",
		}, cfg.ExtraQEMUArgs)
		assert.Equal(t, []Mount{
			{HostPath: "/home/me/a,b", GuestPath: "/mnt/a", Writable: true, Tag: "xmount0", Source: MountFromFlag},
			{HostPath: "/home/me/ref", GuestPath: "/mnt/ref", Tag: "xmount1", Source: MountFromFlag},
		}, p.Mounts)
	})
	t.Run("nesting with a template mount is refused", func(t *testing.T) {
		cfg := machine.Config{Template: sandboxTemplate()}
		_, err := withMounts(&cfg, []MountSpec{{HostPath: "/x", GuestPath: "/workspace/sub"}})
		require.ErrorIs(t, err, ErrBadMount)
		assert.Contains(t, err.Error(), "/workspace/sub nests with the template's mount at /workspace")
		_, err = withMounts(&cfg, []MountSpec{{HostPath: "/x", GuestPath: "/srv"}})
		require.NoError(t, err, "/srv is beside /workspace and /reference")
	})
}

func TestMountScript(t *testing.T) {
	ms := []Mount{
		{HostPath: "/h/ws", GuestPath: "/workspace", Writable: true, Tag: "mount0"},
		{HostPath: "/h/ref", GuestPath: "/mnt/ref", Tag: "xmount0"},
	}
	s := mountScript(ms, "guest", true)
	assert.Contains(t, s, "echo 1 > /sys/bus/pci/rescan")
	assert.Contains(t, s, "for t in mount0 xmount0; do")
	assert.Contains(t, s, "mkdir -p /workspace /mnt/ref ")
	assert.Contains(t, s, `*" "mount0:/workspace" "*) ;; *) mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none mount0 /workspace`)
	assert.Contains(t, s, `*" "xmount0:/mnt/ref" "*) ;; *) mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none,ro xmount0 /mnt/ref`)
	assert.Contains(t, s, "chown guest: /workspace ||")
	assert.Contains(t, s, "-v want='mount0 /workspace rw;xmount0 /mnt/ref ro'")
	assert.NotContains(t, mountScript(ms[:1], "guest", false), "rescan")
	assert.NotContains(t, mountScript(ms[1:], "guest", false), "chown")
	out, err := osexec.Command("sh", "-n", "-c", s).CombinedOutput()
	require.NoError(t, err, "sh -n: %s", out)
}

// The script run by sh against a fake /proc/mounts: the check fails on a
// mount that is missing or rw where ro was asked. (The guest side runs in
// the integration tests.)
func TestMountScriptCheck(t *testing.T) {
	if _, err := osexec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	s := mountScript([]Mount{
		{GuestPath: "/workspace", Writable: true, Tag: "mount0"},
		{GuestPath: "/mnt/ref", Tag: "xmount0"},
	}, "guest", false)
	check := s[strings.Index(s, "bad=$(awk"):]
	check = strings.ReplaceAll(check, "/proc/mounts", "\"$MOUNTS\"")
	check = "fail() { c=$1; shift; echo \"$*\" >&2; exit $c; }\nat() { :; }\n" + check
	for _, tc := range []struct {
		name, mounts string
		code         int
		msg          string
	}{
		{"both right", "mount0 /workspace 9p rw,relatime 0 0\nxmount0 /mnt/ref 9p ro,relatime 0 0\n", 0, ""},
		{"ro mounted rw", "mount0 /workspace 9p rw,relatime 0 0\nxmount0 /mnt/ref 9p rw,relatime 0 0\n", exitVerify, "/mnt/ref is not mounted ro from xmount0"},
		{"missing", "mount0 /workspace 9p rw,relatime 0 0\n", exitVerify, "/mnt/ref is not mounted ro from xmount0"},
		{"another tag", "mount1 /workspace 9p rw 0 0\nxmount0 /mnt/ref 9p ro 0 0\n", exitVerify, "/workspace is not mounted rw from mount0"},
		{"not 9p", "tmpfs /workspace tmpfs rw 0 0\nxmount0 /mnt/ref 9p ro 0 0\n", exitVerify, "/workspace is not mounted rw from mount0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "mounts")
			require.NoError(t, os.WriteFile(f, []byte(tc.mounts), 0o644))
			cmd := osexec.Command("sh", "-c", check)
			cmd.Env = append(os.Environ(), "MOUNTS="+f)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *osexec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			assert.Equal(t, tc.code, code, string(out))
			assert.Contains(t, string(out), tc.msg)
		})
	}
}

// The script's exit codes become errors that say what to do.
func TestMountError(t *testing.T) {
	runErr := func(code int, stderr string) error {
		return &exec.RunError{Cmd: "sh", Result: exec.Result{ExitCode: code, Stderr: []byte(stderr)}, Err: errors.New("exit")}
	}
	err := mountError(runErr(exitNo9p, "kernel 6.12.117+deb13-cloud-amd64 has no 9p (modprobe 9pnet_virtio 9p failed)\n"))
	require.ErrorIs(t, err, ErrNo9p)
	assert.Contains(t, err.Error(), "6.12.117+deb13-cloud-amd64 has no 9p")
	assert.Contains(t, err.Error(), "debian-13-sandbox")

	err = mountError(runErr(exitChown, "chown of /w failed: the host directory /h needs user xattrs"))
	require.ErrorIs(t, err, ErrMountFailed)
	assert.True(t, strings.HasSuffix(err.Error(), "needs user xattrs"))

	err = mountError(errors.New("connection lost"))
	require.ErrorIs(t, err, ErrMountFailed)
}

func TestCheckMounts(t *testing.T) {
	require.NoError(t, CheckMounts(sandboxTemplate(), nil))
	require.NoError(t, CheckMounts(sandboxTemplate(), []MountSpec{{HostPath: "/x", GuestPath: "/workspace"}, {HostPath: "/y", GuestPath: "/mnt/y"}}))
	err := CheckMounts(sandboxTemplate(), []MountSpec{{HostPath: "/x", GuestPath: "/reference/sub", ReadOnly: true}})
	require.ErrorIs(t, err, ErrBadMount)
	assert.Contains(t, err.Error(), `invalid --mount "/x:/reference/sub:ro": /reference/sub nests with the template's mount at /reference`)
}

func TestCheckHostPaths(t *testing.T) {
	home := t.TempDir()
	cache := filepath.Join(home, ".cache", "guestcatalog")
	require.NoError(t, os.MkdirAll(filepath.Join(cache, "instances"), 0o700))
	project := filepath.Join(home, "project")
	require.NoError(t, os.Mkdir(project, 0o700))
	real := func(p string) string { r, err := filepath.EvalSymlinks(p); require.NoError(t, err); return r }

	require.NoError(t, CheckHostPaths([]MountSpec{{HostPath: real(project), GuestPath: "/w"}}, cache))
	for _, host := range []string{home, cache, filepath.Join(cache, "instances")} {
		err := CheckHostPaths([]MountSpec{{HostPath: real(host), GuestPath: "/w", ReadOnly: true}}, cache)
		require.ErrorIs(t, err, ErrBadMount, host)
		assert.Contains(t, err.Error(), "overlap (it holds every instance's SSH keys and the saved guests)")
	}
}
