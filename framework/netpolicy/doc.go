// Package netpolicy is the host side of a template's network policy: an
// HTTP(S) proxy on 127.0.0.1 that lets a restricted guest reach only the
// host names of its allowlist (CONNECT tunnels and plain HTTP), started and
// stopped with the guest, bounded in connections and time.
//
// The HTTP parsing is the standard library's (net/http server, httputil's
// ReverseProxy for plain HTTP); the package adds the allowlist, the check of
// every resolved destination address (never link-local, loopback only when
// allowed) and the bounds. github.com/elazarl/goproxy was considered: it
// would bring the same net/http underneath plus a MITM layer, its own
// logging and handler chain that this proxy does not need, and one more
// dependency to keep current; CONNECT and forwarding are a few dozen lines
// over net/http.
package netpolicy
