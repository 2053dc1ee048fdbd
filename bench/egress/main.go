// Command egress measures the egress gateway beside a direct connection and
// beside squid (PERFORMANCE.md, "egress proxy"): CONNECT setup latency with
// a TLS handshake through the tunnel, and bulk throughput through a CONNECT
// tunnel. The upstream and the gateway each run in their own process (this
// binary re-executed), so every path is a real network hop; squid runs from
// the config this command writes into a temp dir. A, B and C alternate in
// one loop so machine drift hits all of them.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nemoclave/nemoclave/gateway/egress"
	"github.com/nemoclave/nemoclave/policy"
)

func main() {
	mode := flag.String("mode", "bench", "bench | upstream | gateway | relay (internal)")
	relayCopy := flag.Bool("relay-copy", false, "relay mode: copy through a user-space buffer instead of splice(2)")
	relays := flag.Bool("relays", true, "also measure two bare CONNECT relays (diagnostic: the cost of the extra loopback hop itself)")
	squid := flag.String("squid", "", "path to squid; empty skips the squid column")
	handshakes := flag.Int("handshakes", 1500, "CONNECT+TLS setups per target")
	rounds := flag.Int("rounds", 12, "bulk transfer rounds per target")
	bulkMiB := flag.Int("bulk-mib", 256, "MiB per bulk transfer")
	flag.Parse()
	var err error
	switch *mode {
	case "upstream":
		err = runUpstream(*bulkMiB)
	case "gateway":
		err = runGateway(flag.Args())
	case "relay":
		err = runRelay(*relayCopy)
	default:
		err = runBench(*squid, *handshakes, *rounds, *bulkMiB, *relays)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "egress bench:", err)
		os.Exit(1)
	}
}

// runUpstream serves a TLS endpoint (handshake, then one byte echoed) and a
// raw endpoint that streams bulkMiB after reading one byte. It prints
// "tlsport rawport cert-path" and serves until stdin closes.
func runUpstream(bulkMiB int) error {
	cert, certPEM, err := selfSigned("bench.example")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "egress-upstream")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	caPath := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(caPath, certPEM, 0o644); err != nil {
		return err
	}
	tln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return err
	}
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go serve(tln, func(c net.Conn) {
		b := make([]byte, 1)
		if _, err := c.Read(b); err == nil {
			c.Write(b)
		}
	})
	chunk := make([]byte, 256<<10)
	go serve(rln, func(c net.Conn) {
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			return
		}
		for left := int64(bulkMiB) << 20; left > 0; left -= int64(len(chunk)) {
			if _, err := c.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
				return
			}
		}
	})
	fmt.Printf("%d %d %s\n", tln.Addr().(*net.TCPAddr).Port, rln.Addr().(*net.TCPAddr).Port, caPath)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func serve(ln net.Listener, h func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			h(c)
		}()
	}
}

// selfSigned makes an ECDSA P-256 certificate for host.
func selfSigned(host string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// runGateway runs the egress gateway: args are tlsport rawport.
func runGateway(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("gateway mode needs tlsport rawport")
	}
	tlsPort, _ := strconv.Atoi(args[0])
	rawPort, _ := strconv.Atoi(args[1])
	dir, err := os.MkdirTemp("", "egress-gateway")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := egress.New(egress.Config{
		AuditDir:            filepath.Join(dir, "audit"),
		Resolver:            staticResolver{"bench.example": netip.MustParseAddr("127.0.0.1"), "bulk.example": netip.MustParseAddr("127.0.0.1")},
		HostAddrs:           func() []netip.Addr { return nil },
		UnsafeAllowLoopback: true, // the upstream is on loopback
	})
	if err != nil {
		return err
	}
	defer p.Close()
	bulk := policy.Endpoint{Host: "bulk.example", Ports: []int{rawPort}, AllowOpaque: true}
	err = p.SetPolicy("bench", &policy.Policy{
		Name: "bench", Revision: 1, UnknownHosts: policy.UnknownDeny,
		Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}},
		Network: []policy.NetworkRule{{Name: "bench", Endpoints: []policy.Endpoint{
			{Host: "bench.example", Ports: []int{tlsPort}}, bulk,
		}}},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	return p.Serve(ctx, ln, "bench")
}

type staticResolver map[string]netip.Addr

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

// child starts this binary in another mode and reads its first line.
func child(args ...string) (*exec.Cmd, io.WriteCloser, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, "", err
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, nil, "", err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	return cmd, stdin, strings.TrimSpace(line), err
}

type target struct {
	name  string
	proxy string // "" for direct
	pid   int    // the proxy's process, for its CPU time (0: none)
}

// runRelay is the least a CONNECT proxy can do: read the request line and
// headers, dial the authority, answer 200 and copy both ways, with no
// policy, audit or SNI check. With copy false the copy is io.Copy between
// two *net.TCPConn (splice(2), as the gateway's tunnel does); with copy
// true it goes through a 256 KiB user-space buffer. It prints its port and
// serves until stdin closes.
func runRelay(copyBuf bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	go serve(ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			return
		}
		// The bench's host names all mean this machine.
		_, port, _ := net.SplitHostPort(req.RequestURI)
		up, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			up.Write(b)
		}
		cp := func(dst, src net.Conn) {
			if copyBuf {
				// Hide the TCPConn methods, so io.CopyBuffer cannot splice.
				io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 256<<10))
			} else {
				io.Copy(dst, src)
			}
			dst.(*net.TCPConn).CloseWrite()
		}
		done := make(chan struct{})
		go func() { cp(c, up); close(done) }()
		cp(up, c)
		<-done
	})
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func runBench(squidPath string, handshakes, rounds, bulkMiB int, relays bool) error {
	up, upIn, line, err := child("-mode", "upstream", "-bulk-mib", strconv.Itoa(bulkMiB))
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer func() { upIn.Close(); up.Wait() }()
	f := strings.Fields(line)
	tlsPort, rawPort, caPath := f[0], f[1], f[2]
	gw, gwIn, gwPort, err := child("-mode", "gateway", tlsPort, rawPort)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer func() { gwIn.Close(); gw.Wait() }()

	targets := []target{{"direct", "", 0}, {"nemoclave", "127.0.0.1:" + gwPort, gw.Process.Pid}}
	if relays {
		for _, r := range []struct{ name, flag string }{{"bare relay, splice (diagnostic)", "-relay-copy=false"}, {"bare relay, 256 KiB copy (diagnostic)", "-relay-copy=true"}} {
			cmd, in, port, err := child("-mode", "relay", r.flag)
			if err != nil {
				return fmt.Errorf("relay: %w", err)
			}
			defer func() { in.Close(); cmd.Wait() }()
			targets = append(targets, target{r.name, "127.0.0.1:" + port, cmd.Process.Pid})
		}
	}
	if squidPath != "" {
		addr, stop, ver, pid, err := startSquid(squidPath, tlsPort, rawPort)
		if err != nil {
			return fmt.Errorf("squid: %w", err)
		}
		defer stop()
		fmt.Printf("squid: %s\n", ver)
		targets = append(targets, target{"squid", addr, pid})
	}
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)

	// Setup latency: dial (proxy or upstream), CONNECT, TLS handshake, one
	// byte each way.
	// CPU time per CONNECT and per MiB of every process on each path. The
	// client (this process) and the shared upstream are sampled around each
	// call, so the alternation's other targets are not counted; each proxy
	// serves only its own target, so its time over the whole measured loop
	// counts, including what it finishes after a call returned (closing
	// the tunnel, the audit record). It depends far less than latency on
	// what else loads the machine.
	lat := map[string][]time.Duration{}
	cpuConnect := map[string]*pathCPU{}
	var proxies0 map[string]time.Duration
	for i := 0; i < handshakes+100; i++ {
		if i == 100 {
			proxies0 = proxyCPU(targets)
		}
		for _, tg := range targets {
			before := sampleCPU(up.Process.Pid)
			d, err := setup(tg, "bench.example:"+tlsPort, roots)
			if err != nil {
				return fmt.Errorf("%s setup: %w", tg.name, err)
			}
			if i >= 100 { // warm-up
				lat[tg.name] = append(lat[tg.name], d)
				addCPU(cpuConnect, tg.name, before, sampleCPU(up.Process.Pid))
			}
		}
	}
	addProxyCPU(cpuConnect, proxies0, proxyCPU(targets))
	// Bulk: one byte up, bulkMiB down through the tunnel.
	tput := map[string][]float64{}
	cpuBulk := map[string]*pathCPU{}
	for i := 0; i < rounds+1; i++ {
		if i == 1 {
			proxies0 = proxyCPU(targets)
		}
		for _, tg := range targets {
			before := sampleCPU(up.Process.Pid)
			mbps, err := bulk(tg, "bulk.example:"+rawPort, int64(bulkMiB)<<20)
			if err != nil {
				return fmt.Errorf("%s bulk: %w", tg.name, err)
			}
			if i > 0 {
				tput[tg.name] = append(tput[tg.name], mbps)
				addCPU(cpuBulk, tg.name, before, sampleCPU(up.Process.Pid))
			}
		}
	}
	addProxyCPU(cpuBulk, proxies0, proxyCPU(targets))
	for _, c := range cpuConnect {
		c.scale(float64(handshakes))
	}
	for _, c := range cpuBulk {
		c.scale(float64(rounds * bulkMiB))
	}
	report(targets, lat, tput, handshakes, rounds, bulkMiB, cpuConnect, cpuBulk)
	return nil
}

// pathCPU is the CPU time of the processes on one path, in µs: the
// client (this process), the upstream and the proxy (none for direct).
type pathCPU struct {
	Client   float64 `json:"client"`
	Upstream float64 `json:"upstream"`
	Proxy    float64 `json:"proxy"`
}

func (c *pathCPU) scale(n float64) {
	c.Client, c.Upstream, c.Proxy = c.Client/n, c.Upstream/n, c.Proxy/n
}

type cpuSample struct{ client, upstream time.Duration }

func sampleCPU(upstream int) cpuSample {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuSample{client: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), upstream: procCPU(upstream)}
}

// proxyCPU reads every proxy's CPU time.
func proxyCPU(targets []target) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, tg := range targets {
		if tg.pid != 0 {
			out[tg.name] = procCPU(tg.pid)
		}
	}
	return out
}

func addProxyCPU(m map[string]*pathCPU, before, after map[string]time.Duration) {
	for name, a := range after {
		if c := m[name]; c != nil {
			c.Proxy += float64((a - before[name]).Nanoseconds()) / 1e3
		}
	}
}

func addCPU(m map[string]*pathCPU, name string, a, b cpuSample) {
	c := m[name]
	if c == nil {
		c = &pathCPU{}
		m[name] = c
	}
	c.Client += float64((b.client - a.client).Nanoseconds()) / 1e3
	c.Upstream += float64((b.upstream - a.upstream).Nanoseconds()) / 1e3
}

// procCPU is a process's CPU time in ns precision: the sum of its threads'
// run time (/proc/<pid>/task/*/schedstat, first field). The bench's
// proxies keep their threads (Go) or have one (squid), so no exited
// thread's time is lost.
func procCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

func dialVia(tg target, authority string) (net.Conn, error) {
	if tg.proxy == "" {
		_, port, _ := net.SplitHostPort(authority)
		return net.Dial("tcp", "127.0.0.1:"+port)
	}
	c, err := net.Dial("tcp", tg.proxy)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s via %s: %s", authority, tg.name, resp.Status)
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("%s sent bytes after the CONNECT response", tg.name)
	}
	return c, nil
}

func setup(tg target, authority string, roots *x509.CertPool) (time.Duration, error) {
	start := time.Now()
	c, err := dialVia(tg, authority)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: "bench.example", RootCAs: roots, ClientSessionCache: nil})
	if err := tc.Handshake(); err != nil {
		return 0, err
	}
	if _, err := tc.Write([]byte{1}); err != nil {
		return 0, err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(tc, b); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func bulk(tg target, authority string, n int64) (float64, error) {
	c, err := dialVia(tg, authority)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte{1}); err != nil {
		return 0, err
	}
	// A large read buffer, so the client is not the bottleneck (io.Discard
	// would read 8 KiB at a time).
	buf := make([]byte, 1<<20)
	var got int64
	for {
		k, err := c.Read(buf)
		got += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if got != n {
		return 0, fmt.Errorf("received %d of %d bytes", got, n)
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}

func startSquid(path, tlsPort, rawPort string) (addr string, stop func(), version string, pid int, err error) {
	dir, err := os.MkdirTemp("", "egress-squid")
	if err != nil {
		return "", nil, "", 0, err
	}
	os.Chmod(dir, 0o777)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, "", 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 bench.example bulk.example\n"), 0o644)
	conf := fmt.Sprintf(`http_port 127.0.0.1:%d
acl allowed_hosts dstdomain bench.example bulk.example
acl allowed_ports port %s %s
acl CONNECT method CONNECT
http_access deny !allowed_ports
http_access allow CONNECT allowed_hosts
http_access deny all
hosts_file %[4]s/hosts
dns_nameservers 127.0.0.1
cache deny all
cache_mem 8 MB
access_log none
cache_log %[4]s/cache.log
pid_filename %[4]s/squid.pid
coredump_dir %[4]s
shutdown_lifetime 0 seconds
`, port, tlsPort, rawPort, dir)
	confPath := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", nil, "", 0, err
	}
	out, _ := exec.Command(path, "-v").Output()
	version = strings.SplitN(string(out), "\n", 2)[0]
	cmd := exec.Command(path, "-N", "-f", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, "", 0, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, version, cmd.Process.Pid, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	log, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
	return "", nil, "", 0, fmt.Errorf("squid did not listen on %s:\n%s", addr, log)
}

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func pctf(d []float64, p float64) float64 {
	s := append([]float64(nil), d...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }

func report(targets []target, lat map[string][]time.Duration, tput map[string][]float64, n, rounds, mib int, cpuConnect, cpuMiB map[string]*pathCPU) {
	fmt.Printf("\nCONNECT + TLS 1.3 handshake + 1-byte echo, %d samples each (alternating):\n", n)
	fmt.Printf("| path | min | median | p99 | added median vs direct |\n|---|---|---|---|---|\n")
	base := pct(lat["direct"], 0.5)
	for _, tg := range targets {
		l := lat[tg.name]
		fmt.Printf("| %s | %s | %s | %s | %s |\n", tg.name, us(pct(l, 0)), us(pct(l, 0.5)), us(pct(l, 0.99)), us(pct(l, 0.5)-base))
	}
	fmt.Printf("\nBulk download through the tunnel, %d MiB x %d rounds each (alternating):\n", mib, rounds)
	fmt.Printf("| path | min MiB/s | median MiB/s | max MiB/s | median vs direct |\n|---|---|---|---|---|\n")
	bt := pctf(tput["direct"], 0.5)
	for _, tg := range targets {
		t := tput[tg.name]
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %.0f %% |\n", tg.name, pctf(t, 0), pctf(t, 0.5), pctf(t, 1), 100*pctf(t, 0.5)/bt)
	}
	fmt.Printf("\nCPU time on each path (threads' run time from schedstat; client = this process), per CONNECT setup and per MiB:\n")
	fmt.Printf("| path | setup: client | upstream | proxy | total | bulk per MiB: client | upstream | proxy | total |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, tg := range targets {
		c, b := cpuConnect[tg.name], cpuMiB[tg.name]
		if c == nil || b == nil {
			continue
		}
		fmt.Printf("| %s | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs |\n", tg.name,
			c.Client, c.Upstream, c.Proxy, c.Client+c.Upstream+c.Proxy, b.Client, b.Upstream, b.Proxy, b.Client+b.Upstream+b.Proxy)
	}
	j, _ := json.Marshal(map[string]any{"latency_median_us": medians(lat), "throughput_median_mibs": mediansf(tput),
		"cpu_per_connect_us": cpuConnect, "cpu_per_mib_us": cpuMiB})
	fmt.Printf("\njson: %s\n", j)
}

func medians(m map[string][]time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(pct(v, 0.5).Nanoseconds()) / 1000
	}
	return out
}

func mediansf(m map[string][]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = pctf(v, 0.5)
	}
	return out
}
