package isolation

import (
	"fmt"

	"github.com/guestcatalog/guestcatalog/framework/machine"
)

// FromMachine is the Input for a started machine: its runner, template,
// mounts as exported, QEMU pid and the host ports it publishes on purpose
// (SSH and the template's port forwards).
func FromMachine(m *machine.Machine, c *Canaries, targets EgressTargets) Input {
	in := Input{Guest: m.Runner(), Template: m.Template(), Canaries: c, QEMUPid: m.QEMUPid(), Targets: targets, Overlay: m.Overlay()}
	for _, sm := range m.Mounts() {
		in.Mounts = append(in.Mounts, Mount{HostPath: sm.HostPath, GuestPath: sm.GuestPath, Tag: sm.Tag, Writable: sm.Writable})
	}
	in.PublishedPorts = append(in.PublishedPorts, m.SSHPort())
	if vm := m.QEMU(); vm != nil {
		for _, pf := range m.Template().PortForwards {
			if p := vm.HostPort(pf.GuestPort); p != 0 {
				in.PublishedPorts = append(in.PublishedPorts, p)
			}
		}
	}
	return in
}

// LeftoversOf records, while the machine runs, what CheckTeardown looks
// for after it is closed.
func LeftoversOf(m *machine.Machine) Leftovers {
	l := Leftovers{QEMUPid: m.QEMUPid(), RunDir: m.RunDir()}
	if p := m.Proxy(); p != nil {
		l.ProxyAddr = p.Addr()
	}
	if port := m.SSHPort(); port != 0 {
		l.Listeners = append(l.Listeners, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return l
}
