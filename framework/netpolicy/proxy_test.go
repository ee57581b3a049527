package netpolicy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapResolver resolves test names to fixed addresses.
type mapResolver map[string]string

func (m mapResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if a, ok := m[host]; ok {
		return []net.IPAddr{{IP: net.ParseIP(a)}}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func startProxy(t *testing.T, opts Options) *Proxy {
	t.Helper()
	p, err := Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func proxyClient(p *Proxy) *http.Client {
	u, _ := url.Parse("http://" + p.Addr())
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(u),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test server certificate
	}}
}

func serverPort(t *testing.T, s *httptest.Server) string {
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	return u.Port()
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyHTTPAndConnect(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from "+r.Host) })
	plain := httptest.NewServer(h)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	pp, tp := serverPort(t, plain), serverPort(t, tlsSrv)

	p := startProxy(t, Options{
		Allow:        []string{"allowed.test:" + pp, "allowed.test:" + tp, "*.wild.test:" + pp},
		HostLoopback: true, // the test servers are on 127.0.0.1
		Resolver:     mapResolver{"allowed.test": "127.0.0.1", "a.wild.test": "127.0.0.1", "denied.test": "127.0.0.1", "wild.test": "127.0.0.1"},
	})
	c := proxyClient(p)

	code, body := get(t, c, "http://allowed.test:"+pp+"/x")
	assert.Equal(t, 200, code, body)
	assert.Equal(t, "hello from allowed.test:"+pp, body)
	code, body = get(t, c, "https://allowed.test:"+tp+"/x")
	assert.Equal(t, 200, code, body, "CONNECT to an allowed name")
	code, _ = get(t, c, "http://a.wild.test:"+pp+"/")
	assert.Equal(t, 200, code, "*.wild.test allows a.wild.test")

	for _, u := range []string{
		"http://denied.test:" + pp + "/",
		"http://wild.test:" + pp + "/",      // the wildcard does not allow the apex
		"http://allowed.test:1/",            // another port
		"http://127.0.0.1:" + pp + "/",      // IP literal not listed
		"http://[::1]:" + pp + "/",          // IPv6 literal not listed
		"http://169.254.169.254/latest/",    // metadata service
		"http://allowed.test.evil.test:80/", // suffix trick
	} {
		code, body := get(t, c, u)
		assert.Equal(t, http.StatusForbidden, code, "%s: %s", u, body)
	}
	_, err := c.Get("https://denied.test:" + tp + "/")
	require.Error(t, err, "CONNECT to a name not in the allowlist")
	assert.Contains(t, err.Error(), "Forbidden")
	_, err = c.Get("https://127.0.0.1:" + tp + "/")
	require.Error(t, err, "CONNECT to an IP literal not listed")

	var allowed, refused int
	for _, d := range p.Decisions() {
		if d.Allowed {
			allowed++
		} else {
			refused++
		}
	}
	assert.Equal(t, 3, allowed)
	assert.Equal(t, 9, refused)
}

// TestProxyLoopbackNeedsHostLoopback: an allowed name that resolves to the
// host's loopback (DNS rebinding) is refused unless hostLoopback; a listed
// loopback literal is what the author asked for.
func TestProxyLoopbackNeedsHostLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") }))
	defer srv.Close()
	port := serverPort(t, srv)
	p := startProxy(t, Options{
		Allow:    []string{"rebind.test:" + port, "127.0.0.1:" + port},
		Resolver: mapResolver{"rebind.test": "127.0.0.1"},
	})
	c := proxyClient(p)
	code, body := get(t, c, "http://rebind.test:"+port+"/")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.Contains(t, body, "the host's loopback (hostLoopback is off)")
	code, _ = get(t, c, "http://127.0.0.1:"+port+"/")
	assert.Equal(t, 200, code, "a listed IP literal")
}

func TestProxyRefusesLinkLocalEvenIfListed(t *testing.T) {
	p := startProxy(t, Options{Allow: []string{"meta.test", "169.254.169.254"}, HostLoopback: true,
		Resolver: mapResolver{"meta.test": "169.254.169.254"}})
	c := proxyClient(p)
	for _, u := range []string{"http://meta.test/", "http://169.254.169.254/"} {
		code, body := get(t, c, u)
		assert.Equal(t, http.StatusBadGateway, code, u)
		assert.Contains(t, body, "link-local", u)
	}
}

func TestProxyRefusesOriginFormAndGarbage(t *testing.T) {
	p := startProxy(t, Options{Allow: []string{"a.test"}})
	resp, err := http.Get("http://" + p.Addr() + "/") // not a proxy request
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	conn, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprint(conn, "CONNECT nonsense HTTP/1.1\r\nHost: nonsense\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, line, "400")
}

// TestProxyBoundsConnections: with MaxConns 2, a third client waits until
// one of the first two ends; Close ends open tunnels.
func TestProxyBoundsConnections(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	port := echo.Addr().(*net.TCPAddr).Port
	p := startProxy(t, Options{Allow: []string{"127.0.0.1:" + strconv.Itoa(port)}, MaxConns: 2})

	tunnel := func() (net.Conn, error) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port, port)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if !strings.Contains(line, "200") {
			c.Close()
			return nil, fmt.Errorf("%s", line)
		}
		_, _ = r.ReadString('\n')
		_ = c.SetReadDeadline(time.Time{})
		return c, nil
	}
	a, err := tunnel()
	require.NoError(t, err)
	b, err := tunnel()
	require.NoError(t, err)
	_, err = tunnel()
	require.Error(t, err, "a third connection is not served while two are open")
	a.Close()
	require.Eventually(t, func() bool {
		c, err := tunnel()
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 100*time.Millisecond, "served again once one ended")

	// the tunnel carries bytes both ways
	fmt.Fprint(b, "ping\n")
	line, err := bufio.NewReader(b).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ping\n", line)

	require.NoError(t, p.Close())
	_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = b.Read(make([]byte, 1))
	assert.Error(t, err, "Close ends open tunnels")
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.Error(t, err, "no listener after Close")
}

func TestAllowlist(t *testing.T) {
	a, err := ParseAllowlist([]string{"Deb.Debian.org.", "*.example.org:8443", "192.0.2.1", "[2001:db8::1]:443"})
	require.NoError(t, err)
	for _, tc := range []struct {
		host string
		port int
		ok   bool
	}{
		{"deb.debian.org", 80, true},
		{"DEB.debian.org.", 443, true},
		{"deb.debian.org", 22, false},
		{"security.debian.org", 443, false},
		{"a.example.org", 8443, true},
		{"a.b.example.org", 8443, true},
		{"example.org", 8443, false},
		{"a.example.org", 443, false},
		{"192.0.2.1", 80, true},
		{"192.0.2.2", 80, false},
		{"2001:db8::1", 443, true},
		{"[2001:db8::1]", 443, true},
		{"2001:db8::1", 80, false},
	} {
		ok, _ := a.Allows(tc.host, tc.port)
		assert.Equal(t, tc.ok, ok, "%s:%d", tc.host, tc.port)
	}
	for _, bad := range []string{"a.test:0", "*", "a..b", "http://x/"} {
		_, err := ParseAllowlist([]string{bad})
		assert.Error(t, err, bad)
	}
}
