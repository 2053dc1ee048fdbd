//go:build kubernetes

package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/host/runtime"
	"github.com/nemoclave/nemoclave/sandbox"
	sbk8s "github.com/nemoclave/nemoclave/sandbox/kubernetes"
	"github.com/nemoclave/nemoclave/sandbox/local"
)

// KubernetesAvailable is validate's answer for driver = "kubernetes": the
// daemon `nemoclave run` starts has no flags, so the environment it
// inherits is its configuration, read by the same rule as kubernetesConfig
// without loading anything.
func KubernetesAvailable() error {
	if os.Getenv("NEMOCLAVE_KUBECONFIG") != "" {
		return nil
	}
	if os.Getenv("NEMOCLAVE_K8S_IMAGE") != "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return nil // in a pod: the in-cluster account
	}
	return runtime.DriverUnavailable("kubernetes", []string{"local"})
}

// CredentialStore is the store the daemon resolves credentials from: the Secret of $NEMOCLAVE_K8S_CREDENTIALS_SECRET when
// set, then credentials.json, then the environment.
func CredentialStore(ctx context.Context, home string) (credentials.Backend, error) {
	chain := credentials.Default(home)
	ref := os.Getenv("NEMOCLAVE_K8S_CREDENTIALS_SECRET")
	if ref == "" {
		return chain, nil
	}
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("$NEMOCLAVE_K8S_CREDENTIALS_SECRET %q: write namespace/name", ref)
	}
	var cfg *rest.Config
	var err error
	if kc := os.Getenv("NEMOCLAVE_KUBECONFIG"); kc != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kc)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("$NEMOCLAVE_K8S_CREDENTIALS_SECRET is set but the cluster is not reachable (set NEMOCLAVE_KUBECONFIG): %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return append(credentials.Chain{&credentials.KubernetesSecret{Client: client, Namespace: ns, Secret: name}}, chain...), nil
}

// restConfig returns the cluster to use, or nil when there is none.
func restConfig(k KubernetesConfig) (*rest.Config, error) {
	if k.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: load --kubeconfig %s: %w", k.Kubeconfig, err)
		}
		return cfg, nil
	}
	if k.Image == "" {
		return nil, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, errors.New("kubernetes: --kubernetes-image is set but there is no cluster: pass --kubeconfig, or run the daemon in a pod")
	}
	return cfg, err
}

// setupKubernetes builds the kubernetes driver (and the local one
// beside it) when the daemon has a cluster; ctx bounds the driver's
// informer and Front.
func setupKubernetes(ctx context.Context, home string, k KubernetesConfig, logger *slog.Logger) (kubernetesSetup, error) {
	out := noKubernetes()
	cfg, err := restConfig(k)
	if err != nil || cfg == nil {
		return out, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return out, fmt.Errorf("kubernetes: %w", err)
	}
	if k.CredentialsSecret != "" {
		ns, name, ok := strings.Cut(k.CredentialsSecret, "/")
		if !ok || ns == "" || name == "" {
			return out, fmt.Errorf("--kubernetes-credentials-secret %q: write namespace/name", k.CredentialsSecret)
		}
		out.wrap = secretCredentials(ctx, &credentials.KubernetesSecret{Client: client, Namespace: ns, Secret: name}, logger)
	}
	if k.Image == "" {
		return out, errors.New("kubernetes: --kubernetes-image (or $NEMOCLAVE_K8S_IMAGE) is required: the image of the sandbox pods, with the nemoclave binary at /usr/local/bin/nemoclave")
	}
	var size int64
	if k.WorkspaceSize != "" {
		q, err := resource.ParseQuantity(k.WorkspaceSize)
		if err != nil {
			return out, fmt.Errorf("--kubernetes-workspace-size %q: %w", k.WorkspaceSize, err)
		}
		size = q.Value()
	}
	sched, nodeSelector, err := scheduling(k)
	if err != nil {
		return out, err
	}
	ln, err := net.Listen("tcp", k.FrontAddress)
	if err != nil {
		return out, fmt.Errorf("kubernetes: listen for sandbox pods on --kubernetes-front-address %s: %w", k.FrontAddress, err)
	}
	var frontCA []byte
	if k.FrontCert != "" || k.FrontKey != "" || k.FrontCA != "" {
		if k.FrontCert == "" || k.FrontKey == "" || k.FrontCA == "" {
			ln.Close()
			return out, errors.New("kubernetes: TLS on the Front needs all of --kubernetes-front-tls-cert, --kubernetes-front-tls-key and --kubernetes-front-ca")
		}
		if frontCA, err = os.ReadFile(k.FrontCA); err != nil {
			ln.Close()
			return out, fmt.Errorf("kubernetes: read --kubernetes-front-ca: %w", err)
		}
		kp := &reloadingKeyPair{cert: k.FrontCert, key: k.FrontKey}
		if _, err := kp.get(nil); err != nil {
			ln.Close()
			return out, err
		}
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: kp.get, MinVersion: tls.VersionTLS13})
	}
	front := sbk8s.NewFront(ln, sbk8s.NewAuthenticator(client, k.Audience), func(msg string, args ...any) { logger.Warn(msg, args...) })
	go func() { _ = front.Serve(ctx) }()
	d, err := sbk8s.New(ctx, sbk8s.Options{
		Client: client, Config: cfg, Namespace: k.Namespace, Image: k.Image,
		RuntimeClassName: k.RuntimeClass, StorageClass: k.StorageClass, StorageBytes: size,
		Audience: k.Audience, GatewayNamespace: k.GatewayNamespace, GatewayService: k.GatewayService,
		GatewayAddress: k.GatewayAddress, Front: front, Logger: logger, FrontCA: frontCA,
		Scheduling: sched, NodeSelector: nodeSelector,
		// Replicas under a leader Lease hand their pods over on shutdown.
		KeepPodsOnShutdown: k.Controller,
	})
	if err != nil {
		ln.Close()
		return out, err
	}
	ld, err := local.New(local.Config{StateRoot: filepath.Join(home, "sandboxes")})
	if err != nil {
		ln.Close()
		return out, err
	}
	out.drivers = map[string]sandbox.Driver{"local": ld, sbk8s.DriverName: d}
	gwNS := k.GatewayNamespace
	if gwNS == "" {
		gwNS = k.Namespace
	}
	out.withRuntime = withRuntimeHook(k, cfg, d, home, gwNS, logger)

	logger.Info("kubernetes driver ready", "namespace", k.Namespace, "front", ln.Addr().String())
	return out, nil
}

// scheduling is the sandbox pods' placement from
// --kubernetes-scheduling-file and --kubernetes-toleration (added to the
// file's tolerations).
func scheduling(k KubernetesConfig) (sbk8s.Scheduling, map[string]string, error) {
	var s sbk8s.Scheduling
	var nodeSelector map[string]string
	if k.SchedulingFile != "" {
		var err error
		if s, nodeSelector, err = sbk8s.LoadScheduling(k.SchedulingFile); err != nil {
			return s, nil, fmt.Errorf("kubernetes: --kubernetes-scheduling-file: %w", err)
		}
	}
	for _, t := range k.Tolerations {
		tol, err := sbk8s.ParseToleration(t)
		if err != nil {
			return s, nil, fmt.Errorf("kubernetes: --kubernetes-toleration: %w", err)
		}
		s.Tolerations = append(s.Tolerations, tol)
	}
	return s, nodeSelector, nil
}

// secretCredentials looks credentials up in the Secret first, then in the
// daemon's other stores, and redacts the Secret's values too.
func secretCredentials(ctx context.Context, k *credentials.KubernetesSecret, logger *slog.Logger) func(func(string) (string, error), func(string) string) (func(string) (string, error), func(string) string) {
	return func(lookup func(string) (string, error), redact func(string) string) (func(string) (string, error), func(string) string) {
		if redact == nil {
			redact = func(s string) string { return s }
		}
		l := func(name string) (string, error) {
			s, err := k.Get(ctx, name)
			if err == nil {
				return s.Reveal(), nil
			}
			if !errors.Is(err, credentials.ErrNotFound) {
				return "", err
			}
			if lookup == nil {
				if v, ok := os.LookupEnv(name); ok {
					return v, nil
				}
				return "", err
			}
			return lookup(name)
		}
		// The redactor is rebuilt at most once a minute: it runs on every
		// answer the gateway sends, and the Secret changes rarely.
		var (
			mu    sync.Mutex
			rd    *credentials.Redactor
			built time.Time
		)
		r := func(text string) string {
			mu.Lock()
			if rd == nil || time.Since(built) > time.Minute {
				n, err := credentials.RedactorFor(ctx, k)
				if err != nil {
					logger.Warn("cannot list the credentials Secret for redaction", "err", err.Error())
				} else {
					rd, built = n, time.Now()
				}
			}
			cur := rd
			mu.Unlock()
			return redact(cur.Redact(text))
		}
		return l, r
	}
}

// reloadingKeyPair serves the Front's certificate from files that a
// certificate manager rewrites, re-reading them at most once a minute.
type reloadingKeyPair struct {
	cert, key string

	mu     sync.Mutex
	pair   *tls.Certificate
	loaded time.Time
}

func (k *reloadingKeyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pair != nil && time.Since(k.loaded) < time.Minute {
		return k.pair, nil
	}
	p, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.pair != nil {
			return k.pair, nil // keep serving the last good pair
		}
		return nil, fmt.Errorf("kubernetes: load the Front's TLS key pair: %w", err)
	}
	k.pair, k.loaded = &p, time.Now()
	return k.pair, nil
}
