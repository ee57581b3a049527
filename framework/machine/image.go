package machine

import "github.com/guestcatalog/guestcatalog/catalog"

// Image is the guest disk and how to boot it: the fields of
// framework/image's Artifact the machine needs.
type Image struct {
	// Disk is the base image (never written: the machine boots an overlay).
	Disk string
	// Format of Disk: qcow2 (default) or raw.
	Format string
	// Kernel, Initrd and Append: direct kernel boot (locally built images).
	Kernel string
	Initrd string
	Append string
	// Firmware: bios (default) or uefi, for disk boot.
	Firmware string
	// Entry is the template's image entry this disk comes from (the seed
	// installs no packages an image with build.bake already has). Default:
	// the template's build entry for the arch when Kernel is set, else a
	// plain entry.
	Entry *catalog.Image
}
