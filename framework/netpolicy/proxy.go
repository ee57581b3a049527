package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxConns    = 64
	DefaultDialTimeout = 15 * time.Second
	DefaultIdleTimeout = 2 * time.Minute
	// MaxDecisions is how many decisions a Proxy keeps (the newest).
	MaxDecisions = 1000
)

// Resolver resolves a host name on the host (net.DefaultResolver in
// production; a map in tests).
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options configure a Proxy.
type Options struct {
	// Allow is the allowlist (see Allowlist).
	Allow []string
	// HostLoopback lets the proxy connect to loopback addresses (an allowed
	// name that resolves to 127.0.0.1). Off, a name resolving to loopback
	// is refused like one resolving to a link-local address (the cloud
	// metadata service 169.254.169.254), unless the entry is that literal
	// IP address.
	HostLoopback bool
	// MaxConns bounds the client connections served at once (default 64);
	// more wait in the kernel's accept queue.
	MaxConns int
	// DialTimeout bounds a connection to a destination (default 15s);
	// IdleTimeout closes a tunnel or keep-alive connection with no traffic
	// for that long (default 2m).
	DialTimeout, IdleTimeout time.Duration
	// Resolver resolves names; default net.DefaultResolver.
	Resolver Resolver
	// Logger receives one line per decision; default silent.
	Logger *slog.Logger
}

// Decision is what the proxy did with one request.
type Decision struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"` // CONNECT or the HTTP method
	Host    string    `json:"host"`
	Port    int       `json:"port"`
	Allowed bool      `json:"allowed"`
	Reason  string    `json:"reason,omitempty"`
}

// Proxy is an HTTP proxy on 127.0.0.1 that lets through only its
// allowlist: CONNECT tunnels (HTTPS) and plain HTTP requests in proxy form.
// The parsing is net/http's; the proxy adds the allowlist, the destination
// check and the bounds. It runs until Close.
type Proxy struct {
	opts  Options
	allow Allowlist
	ln    net.Listener
	srv   *http.Server
	fwd   *httputil.ReverseProxy
	dial  net.Dialer
	done  chan struct{}
	sem   chan struct{}

	mu        sync.Mutex
	decisions []Decision
	tunnels   map[net.Conn]struct{}
	closed    bool
}

// Start listens on 127.0.0.1 (a free port) and serves until Close or the
// end of ctx.
func Start(ctx context.Context, opts Options) (*Proxy, error) {
	allow, err := ParseAllowlist(opts.Allow)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netpolicy: listening: %w", err)
	}
	p := &Proxy{
		opts:    opts,
		allow:   allow,
		ln:      ln,
		dial:    net.Dialer{Timeout: opts.DialTimeout},
		done:    make(chan struct{}),
		sem:     make(chan struct{}, opts.MaxConns),
		tunnels: map[net.Conn]struct{}{},
	}
	transport := &http.Transport{
		Proxy:                 nil, // never chain to the host's own proxy
		DialContext:           p.dialChecked,
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          opts.MaxConns,
		IdleConnTimeout:       opts.IdleTimeout,
		ResponseHeaderTimeout: opts.IdleTimeout,
		TLSHandshakeTimeout:   opts.DialTimeout,
	}
	p.fwd = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL = r.In.URL
			r.Out.Host = r.In.URL.Host
			r.Out.Header.Del("Proxy-Authorization")
			r.Out.Header.Del("Proxy-Connection")
		},
		Transport: transport,
		ErrorLog:  slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "guestcatalog proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(limitListener{Listener: ln, sem: p.sem})
	}()
	context.AfterFunc(ctx, func() { _ = p.Close() })
	return p, nil
}

// Addr is the proxy's address (127.0.0.1:PORT).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops listening, ends every connection and tunnel, and waits for
// the server to stop. Idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	for c := range p.tunnels {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	<-p.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Decisions returns a copy of the newest decisions (at most MaxDecisions).
func (p *Proxy) Decisions() []Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Decision(nil), p.decisions...)
}

func (p *Proxy) record(d Decision) {
	d.Time = time.Now()
	p.mu.Lock()
	if len(p.decisions) >= MaxDecisions {
		p.decisions = append(p.decisions[:0], p.decisions[1:]...)
	}
	p.decisions = append(p.decisions, d)
	p.mu.Unlock()
	p.opts.Logger.Info("proxy", "method", d.Method, "host", d.Host, "port", d.Port, "allowed", d.Allowed, "reason", d.Reason)
}

// ServeHTTP serves CONNECT and proxy-form HTTP requests.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var host string
	var port int
	var err error
	if r.Method == http.MethodConnect {
		host, port, err = splitHostPort(r.Host, 0)
	} else {
		if !r.URL.IsAbs() || r.URL.Scheme != "http" {
			p.record(Decision{Method: r.Method, Host: r.Host, Allowed: false, Reason: "not a proxy request"})
			http.Error(w, "guestcatalog proxy: only CONNECT and absolute http:// URLs", http.StatusBadRequest)
			return
		}
		host, port, err = splitHostPort(r.URL.Host, 80)
	}
	if err != nil {
		p.record(Decision{Method: r.Method, Host: r.Host, Reason: err.Error()})
		http.Error(w, "guestcatalog proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	if ok, why := p.allow.Allows(host, port); !ok {
		p.record(Decision{Method: r.Method, Host: host, Port: port, Reason: why})
		http.Error(w, fmt.Sprintf("guestcatalog proxy: %s:%d refused: %s", host, port, why), http.StatusForbidden)
		return
	}
	if r.Method != http.MethodConnect {
		p.record(Decision{Method: r.Method, Host: host, Port: port, Allowed: true})
		p.fwd.ServeHTTP(w, r)
		return
	}
	p.connect(w, r, host, port)
}

// connect dials the destination, then turns the client connection into a
// tunnel to it.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request, host string, port int) {
	dst, err := p.dialChecked(r.Context(), "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		status := http.StatusBadGateway
		var refused *RefusedError
		if errors.As(err, &refused) {
			status = http.StatusForbidden
		}
		p.record(Decision{Method: r.Method, Host: host, Port: port, Reason: err.Error()})
		http.Error(w, "guestcatalog proxy: "+err.Error(), status)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = dst.Close()
		http.Error(w, "guestcatalog proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	src, rw, err := hj.Hijack()
	if err != nil {
		_ = dst.Close()
		return
	}
	p.record(Decision{Method: r.Method, Host: host, Port: port, Allowed: true})
	if !p.track(src, dst) {
		_ = src.Close()
		_ = dst.Close()
		return
	}
	defer p.untrack(src, dst)
	if _, err := io.WriteString(src, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	// Bytes the client sent after the CONNECT header (buffered by net/http)
	// go first.
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		if _, err := dst.Write(b); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(dst, src) }()
	go func() { defer wg.Done(); p.pipe(src, dst) }()
	wg.Wait()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.tunnels, c)
		_ = c.Close()
	}
}

// pipe copies src to dst until EOF, an error or IdleTimeout without
// traffic, then half-closes dst (or closes both).
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		_ = src.SetReadDeadline(time.Now().Add(p.opts.IdleTimeout))
		n, err := src.Read(buf)
		if n > 0 {
			_ = dst.SetWriteDeadline(time.Now().Add(p.opts.IdleTimeout))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				_ = src.Close()
				return
			}
		}
		if err != nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && errors.Is(err, io.EOF) {
				_ = cw.CloseWrite()
			} else {
				_ = dst.Close()
				_ = src.Close()
			}
			return
		}
	}
}

// RefusedError is a destination the proxy will not connect to.
type RefusedError struct {
	Host, Reason string
}

func (e *RefusedError) Error() string { return e.Host + " refused: " + e.Reason }

// dialChecked resolves the destination on the host and connects only to
// addresses the policy permits: never to link-local (169.254.0.0/16, the
// metadata service; fe80::/10), unspecified or multicast addresses, to
// loopback only with HostLoopback or when the entry is that IP literal.
// Checking the resolved address (not the name) stops a name that resolves
// to the host's loopback (DNS rebinding) from reaching it.
func (p *Proxy) dialChecked(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	literal := net.ParseIP(host)
	if literal != nil {
		ips = []net.IP{literal}
	} else {
		rctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
		addrs, err := p.opts.Resolver.LookupIPAddr(rctx, host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	var lastErr error = &RefusedError{Host: host, Reason: "no address"}
	for _, ip := range ips {
		if why := p.refuseIP(ip, literal != nil); why != "" {
			lastErr = &RefusedError{Host: host, Reason: fmt.Sprintf("%s is %s", ip, why)}
			continue
		}
		c, err := p.dial.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// refuseIP says why the proxy will not connect to ip ("" if it will).
func (p *Proxy) refuseIP(ip net.IP, literal bool) string {
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local (the metadata service lives there)"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsLoopback() && !p.opts.HostLoopback && !literal:
		return "the host's loopback (hostLoopback is off)"
	}
	return ""
}

func splitHostPort(hostport string, defaultPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		if defaultPort == 0 {
			return "", 0, fmt.Errorf("%q is not host:port", hostport)
		}
		host, ps = strings.Trim(hostport, "[]"), strconv.Itoa(defaultPort)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("%q is not host:port", hostport)
	}
	return strings.TrimSuffix(strings.ToLower(host), "."), port, nil
}

// limitListener serves at most cap(sem) connections at once.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the underlying TCP connection (tunnels).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
