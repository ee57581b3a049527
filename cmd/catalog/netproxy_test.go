package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/guestcatalog/guestcatalog/framework/instance"
)

// The helper command is hidden from help and needs --instance-dir; a
// directory that is not an instance fails without serving anything.
func TestNetProxyCommand(t *testing.T) {
	out, _, code := runCLI(t, "--help")
	assert.Equal(t, 0, code)
	assert.NotContains(t, out, instance.ProxyHelperCommand)

	_, errOut, code := runCLI(t, instance.ProxyHelperCommand)
	assert.Equal(t, ExitUsage, code, errOut)
	assert.Contains(t, errOut, "--instance-dir")

	out, errOut, code = runCLI(t, instance.ProxyHelperCommand, "--instance-dir", t.TempDir())
	assert.Equal(t, ExitFailed, code)
	assert.Empty(t, out, "it printed an address")
	assert.Contains(t, errOut, instance.ProxyConfigFile)
}
