package machine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
)

func TestResolveMounts(t *testing.T) {
	tmpl := &catalog.Template{User: &catalog.User{Name: "guest"}, Mounts: []catalog.Mount{
		{Location: "~/work", MountPoint: "/workspace", Writable: true},
		{Location: "/srv/ref"},
		{Location: "~/notes"},
	}}
	got, err := ResolveMounts(tmpl, "/home/me")
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, SandboxMount{Mount: tmpl.Mounts[0], HostPath: "/home/me/work", GuestPath: "/workspace", Tag: "mount0"}, got[0])
	assert.Equal(t, "/srv/ref", got[1].HostPath)
	assert.Equal(t, "/srv/ref", got[1].GuestPath, "the guest path defaults to the location")
	assert.Equal(t, "/home/guest/notes", got[2].GuestPath, "~ is the guest user's home in the guest")

	_, err = ResolveMounts(&catalog.Template{User: &catalog.User{Name: "g"}, Mounts: []catalog.Mount{{Location: "rel"}}}, "/h")
	assert.EqualError(t, err, `mounts[0].location: "rel" is not absolute`)
}
