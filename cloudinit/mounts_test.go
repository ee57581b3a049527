package cloudinit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func TestRenderMounts(t *testing.T) {
	tmpl := fixtureDebianDocker()
	tmpl.Mounts = []catalog.Mount{
		{Location: "/srv/work", MountPoint: "/workspace", Writable: true},
		{Location: "~/ref dir"},
	}
	in := testInput(t, catalog.ArchX8664)
	s, err := Render(tmpl, in)
	require.NoError(t, err)
	ud := decodeUserData(t, s.UserData)
	boot, _ := ud["bootcmd"].([]any)
	require.GreaterOrEqual(t, len(boot), 3)
	assert.Equal(t, "modprobe -a 9pnet_virtio 9p || true", boot[0])
	assert.Equal(t, "mkdir -p /workspace && { mountpoint -q /workspace || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none mount0 /workspace; }", boot[1])
	user := tmpl.User.Name
	assert.Equal(t, "mkdir -p '/home/"+user+"/ref dir' && { mountpoint -q '/home/"+user+"/ref dir' || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none,ro mount1 '/home/"+user+"/ref dir'; }", boot[2],
		"a read-only mount is mounted ro (QEMU enforces it anyway); ~ is the user's home")
	runcmd, _ := ud["runcmd"].([]any)
	require.Len(t, runcmd, 2)
	assert.Equal(t, []any{"chown", user + ":", "/workspace"}, runcmd[0], "only the writable mount is given to the user")
}

func TestRenderWithoutMountsHasNoMountCommands(t *testing.T) {
	s, err := Render(fixtureDebianDocker(), testInput(t, catalog.ArchX8664))
	require.NoError(t, err)
	ud := decodeUserData(t, s.UserData)
	for _, c := range asSlice(ud["bootcmd"]) {
		assert.NotContains(t, c, "9p")
	}
	assert.Len(t, asSlice(ud["runcmd"]), 1)
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
