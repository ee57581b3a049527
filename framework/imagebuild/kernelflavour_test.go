package imagebuild

import (
	"slices"
	"testing"

	"github.com/guestcatalog/guestcatalog/catalog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKernelFlavour: the generic flavour installs linux-image-<arch> (9p as
// modules) instead of the cloud kernel, and names another image.
func TestKernelFlavour(t *testing.T) {
	cloud, err := NewPlan(catalog.BuildRecipe{Suite: "trixie"}, nil, catalog.ArchX8664)
	require.NoError(t, err)
	generic, err := NewPlan(catalog.BuildRecipe{Suite: "trixie", Kernel: catalog.KernelGeneric}, nil, catalog.ArchX8664)
	require.NoError(t, err)
	assert.True(t, slices.Contains(cloud.Packages, "linux-image-cloud-amd64"))
	assert.False(t, slices.Contains(generic.Packages, "linux-image-cloud-amd64"), "one kernel only: FindKernel takes the newest")
	assert.True(t, slices.Contains(generic.Packages, "linux-image-amd64"))
	assert.NotEqual(t, cloud.Key, generic.Key)

	explicit, err := NewPlan(catalog.BuildRecipe{Suite: "trixie", Kernel: catalog.KernelCloud}, nil, catalog.ArchX8664)
	require.NoError(t, err)
	assert.Equal(t, cloud.Key, explicit.Key, "cloud spelled out is the default")

	_, err = NewPlan(catalog.BuildRecipe{Suite: "trixie", Kernel: "rt"}, nil, catalog.ArchX8664)
	require.ErrorIs(t, err, ErrInvalidRecipe)
	assert.ErrorContains(t, err, `kernel: "rt" is not a kernel flavour (want cloud or generic)`)
}
