package machine

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/guestcatalog/guestcatalog/framework/qemu"
)

// With Config.ProxyAddr (an instance's detached helper) the guest's
// forward targets that address and the machine runs no proxy of its own;
// without it, the machine's own proxy (which ends with the machine).
func TestPrepareSandboxProxyAddr(t *testing.T) {
	tmpl := &catalog.Template{Name: "sbx", User: &catalog.User{Name: "guest"},
		Network: &catalog.Network{Egress: catalog.EgressProxy, Allow: []string{"deb.debian.org"}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	m := &Machine{cfg: Config{Template: tmpl, ProxyAddr: "127.0.0.1:40001"}, logger: slog.New(slog.DiscardHandler), life: ctx}
	var spec qemu.Spec
	require.NoError(t, m.prepareSandbox(ctx, &spec))
	assert.True(t, spec.Restrict)
	require.Len(t, spec.GuestForwards, 1)
	assert.Equal(t, "127.0.0.1:40001", spec.GuestForwards[0].Target)
	assert.Nil(t, m.Proxy(), "a machine given ProxyAddr started its own proxy")

	own := &Machine{cfg: Config{Template: tmpl}, logger: slog.New(slog.DiscardHandler), life: ctx}
	spec = qemu.Spec{}
	require.NoError(t, own.prepareSandbox(ctx, &spec))
	require.NotNil(t, own.Proxy())
	defer own.Proxy().Close()
	require.Len(t, spec.GuestForwards, 1)
	assert.Equal(t, own.Proxy().Addr(), spec.GuestForwards[0].Target)
}
