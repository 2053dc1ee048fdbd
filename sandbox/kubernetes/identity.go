package kubernetes

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// The preamble a supervisor sends before the proxied bytes:
//
//	NEMOCLAVE-SANDBOX/1 <listener> <token>\n
const (
	preambleMagic = "NEMOCLAVE-SANDBOX/1"
	maxPreamble   = 16 << 10
	// preambleTimeout bounds how long an unauthenticated connection may
	// hold a Front goroutine.
	preambleTimeout = 10 * time.Second
	// reviewCacheTTL bounds how long a positive TokenReview is reused; a
	// deleted pod's token stops working within this time at the latest
	// (and at once for new sandboxes, which are looked up by pod UID).
	reviewCacheTTL = 30 * time.Second
	deliverTimeout = 30 * time.Second
	// Keys the API server puts in a bound token's user extra.
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// Identity is who a verified token belongs to.
type Identity struct {
	Namespace      string
	ServiceAccount string
	PodName        string
	PodUID         types.UID
}

// Authenticator verifies sandbox tokens with TokenReview.
type Authenticator struct {
	client   kubernetes.Interface
	audience string

	mu    sync.Mutex
	cache map[[32]byte]cachedReview
}

type cachedReview struct {
	id      Identity
	expires time.Time
}

// NewAuthenticator verifies tokens issued for audience. The client needs
// create on tokenreviews.authentication.k8s.io (cluster scope).
func NewAuthenticator(client kubernetes.Interface, audience string) *Authenticator {
	return &Authenticator{client: client, audience: audience, cache: map[[32]byte]cachedReview{}}
}

// Authenticate returns the identity of a pod-bound service-account token
// issued for the gateway's audience; anything else is refused.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, errors.New("no token")
	}
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.id, nil
	}
	a.mu.Unlock()
	tr, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{a.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return Identity{}, fmt.Errorf("token review failed (the gateway needs create on tokenreviews): %w", err)
	}
	if !tr.Status.Authenticated {
		msg := tr.Status.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return Identity{}, fmt.Errorf("token rejected: %s", msg)
	}
	audOK := false
	for _, aud := range tr.Status.Audiences {
		audOK = audOK || aud == a.audience
	}
	if !audOK {
		return Identity{}, fmt.Errorf("token is not for audience %q", a.audience)
	}
	parts := strings.Split(tr.Status.User.Username, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
		return Identity{}, fmt.Errorf("token belongs to %q, not to a service account", tr.Status.User.Username)
	}
	id := Identity{Namespace: parts[2], ServiceAccount: parts[3]}
	if v := tr.Status.User.Extra[extraPodName]; len(v) == 1 {
		id.PodName = v[0]
	}
	if v := tr.Status.User.Extra[extraPodUID]; len(v) == 1 {
		id.PodUID = types.UID(v[0])
	}
	if id.PodName == "" || id.PodUID == "" {
		return Identity{}, errors.New("token is not bound to a pod: sandboxes present their projected token")
	}
	a.mu.Lock()
	for k, c := range a.cache {
		if now.After(c.expires) {
			delete(a.cache, k)
		}
	}
	a.cache[key] = cachedReview{id: id, expires: now.Add(reviewCacheTTL)}
	a.mu.Unlock()
	return id, nil
}

// route is where a verified sandbox's connections go.
type route struct {
	namespace string
	sa        string
	podUID    types.UID
	listeners map[string]*connListener
}

// Front is the gateway-side listener every sandbox pod dials (through the
// gateway Service). It authenticates each connection and hands it to the
// sandbox listener Start returned; a connection that fails is closed
// before a single byte reaches the gateway.
type Front struct {
	ln   net.Listener
	auth *Authenticator
	log  func(msg string, args ...any)

	mu     sync.Mutex
	routes map[string]*route // by sandbox name
}

// NewFront serves ln. Call Serve in a goroutine.
func NewFront(ln net.Listener, auth *Authenticator, logf func(msg string, args ...any)) *Front {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Front{ln: ln, auth: auth, log: logf, routes: map[string]*route{}}
}

// Addr is the Front's listening address.
func (f *Front) Addr() net.Addr { return f.ln.Addr() }

// Serve accepts until ctx ends or the listener is closed.
func (f *Front) Serve(ctx context.Context) error {
	go func() { <-ctx.Done(); f.ln.Close() }()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go f.handle(ctx, c)
	}
}

// register makes name's listeners reachable by its pod; it replaces an
// earlier registration of the same sandbox.
func (f *Front) register(name, namespace, sa string, podUID types.UID, names []string) map[string]*connListener {
	r := &route{namespace: namespace, sa: sa, podUID: podUID, listeners: map[string]*connListener{}}
	for _, n := range names {
		r.listeners[n] = newConnListener(f.ln.Addr(), func() {})
	}
	f.mu.Lock()
	old := f.routes[name]
	f.routes[name] = r
	f.mu.Unlock()
	if old != nil {
		for _, l := range old.listeners {
			l.Close()
		}
	}
	return r.listeners
}

// unregister drops name's route and closes its listeners.
func (f *Front) unregister(name string) {
	f.mu.Lock()
	r := f.routes[name]
	delete(f.routes, name)
	f.mu.Unlock()
	if r != nil {
		for _, l := range r.listeners {
			l.Close()
		}
	}
}

func (f *Front) handle(ctx context.Context, c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(preambleTimeout))
	br := bufio.NewReaderSize(c, 4096)
	line, err := readLine(br, maxPreamble)
	if err != nil {
		c.Close()
		return
	}
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != preambleMagic {
		f.log("sandbox front: refused a connection without a valid preamble", "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	listener, token := fields[1], fields[2]
	actx, cancel := context.WithTimeout(ctx, preambleTimeout)
	id, err := f.auth.Authenticate(actx, token)
	cancel()
	if err != nil {
		f.log("sandbox front: refused a connection", "remote", c.RemoteAddr().String(), "error", err.Error())
		c.Close()
		return
	}
	l := f.lookup(id, listener)
	if l == nil {
		f.log("sandbox front: refused a connection from a pod that is no sandbox of this gateway", "pod", id.PodName, "service_account", id.ServiceAccount, "listener", listener)
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if !l.deliver(&bufferedConn{Conn: c, r: br}) {
		c.Close()
	}
}

// lookup finds the listener of the sandbox that identity id is. The
// service account names the sandbox, and the pod UID must be that
// sandbox's current pod: a token of an earlier pod of the same sandbox, or
// of any other pod, matches nothing.
func (f *Front) lookup(id Identity, listener string) *connListener {
	name, ok := strings.CutPrefix(id.ServiceAccount, "nc-")
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.routes[name]
	if r == nil || r.namespace != id.Namespace || r.sa != id.ServiceAccount || r.podUID != id.PodUID {
		return nil
	}
	return r.listeners[listener]
}

// readLine reads one '\n'-terminated line of at most limit bytes.
func readLine(br *bufio.Reader, limit int) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > limit {
			return "", errors.New("preamble too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// bufferedConn returns bytes the preamble reader already buffered first.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener is a net.Listener fed by the Front.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
	closed func()
}

func newConnListener(addr net.Addr, closed func()) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{}), closed: closed}
}

// deliver hands c to Accept; a gateway that does not accept within
// deliverTimeout loses the connection rather than a goroutine.
func (l *connListener) deliver(c net.Conn) bool {
	t := time.NewTimer(deliverTimeout)
	defer t.Stop()
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	case <-t.C:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done); l.closed() })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
