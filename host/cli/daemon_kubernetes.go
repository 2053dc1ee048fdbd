//go:build kubernetes

package cli

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

	"github.com/spf13/cobra"
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

// How the daemon gets a kubernetes driver. The daemon creates one, beside
// the local driver, when it has a cluster to talk to: --kubeconfig (or
// $NEMOCLAVE_KUBECONFIG), or the in-cluster service account together with
// --kubernetes-image (the Deployment in deploy/ passes both). Every flag
// has an environment variable, because `nemoclave run` starts the daemon
// on demand without flags and the daemon inherits the environment.
type kubernetesDaemonFlags struct {
	kubeconfig, namespace, image, runtimeClass, storageClass, workspaceSize string
	gatewayNamespace, gatewayService, gatewayAddress, frontAddress          string
	audience, credentialsSecret                                             string
	frontCert, frontKey, frontCA                                            string
	// tolerations (kubectl taint syntax) and schedulingFile (pod spec
	// shape) place the sandbox pods; see sbk8s.ParseToleration and
	// sbk8s.LoadScheduling.
	tolerations    []string
	schedulingFile string
}

var k8sFlags kubernetesDaemonFlags

// addKubernetesDaemonFlags registers the flags on `nemoclave daemon`.
func addKubernetesDaemonFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	f.StringVar(&k8sFlags.kubeconfig, "kubeconfig", env("NEMOCLAVE_KUBECONFIG", ""), "kubeconfig of the cluster for driver = \"kubernetes\" sandboxes ($NEMOCLAVE_KUBECONFIG); in a pod the in-cluster account is used")
	f.StringVar(&k8sFlags.namespace, "kubernetes-namespace", env("NEMOCLAVE_K8S_NAMESPACE", "nemoclave-sandboxes"), "namespace of the sandbox pods; it must allow Pod Security \"restricted\" pods ($NEMOCLAVE_K8S_NAMESPACE)")
	f.StringVar(&k8sFlags.image, "kubernetes-image", env("NEMOCLAVE_K8S_IMAGE", ""), "image of the sandbox pods: the nemoclave binary plus the agent's tools ($NEMOCLAVE_K8S_IMAGE)")
	f.StringVar(&k8sFlags.runtimeClass, "kubernetes-runtime-class", env("NEMOCLAVE_K8S_RUNTIME_CLASS", ""), "runtimeClassName of sandbox pods, e.g. gvisor or kata-vm-isolation ($NEMOCLAVE_K8S_RUNTIME_CLASS)")
	f.StringVar(&k8sFlags.storageClass, "kubernetes-storage-class", env("NEMOCLAVE_K8S_STORAGE_CLASS", ""), "storage class of workspace volumes ($NEMOCLAVE_K8S_STORAGE_CLASS)")
	f.StringVar(&k8sFlags.workspaceSize, "kubernetes-workspace-size", env("NEMOCLAVE_K8S_WORKSPACE_SIZE", ""), "put each workspace on a PersistentVolumeClaim of this size (e.g. 20Gi); empty means an emptyDir ($NEMOCLAVE_K8S_WORKSPACE_SIZE)")
	f.StringVar(&k8sFlags.gatewayNamespace, "kubernetes-gateway-namespace", env("NEMOCLAVE_K8S_GATEWAY_NAMESPACE", ""), "namespace of the gateway Service and pods; default the sandbox namespace ($NEMOCLAVE_K8S_GATEWAY_NAMESPACE)")
	f.StringVar(&k8sFlags.gatewayService, "kubernetes-gateway-service", env("NEMOCLAVE_K8S_GATEWAY_SERVICE", "nemoclave-gateway"), "Service sandbox pods dial to reach the gateway ($NEMOCLAVE_K8S_GATEWAY_SERVICE)")
	f.StringVar(&k8sFlags.gatewayAddress, "kubernetes-gateway-address", env("NEMOCLAVE_K8S_GATEWAY_ADDRESS", ""), "ip:port sandbox pods dial instead of the Service's cluster IP ($NEMOCLAVE_K8S_GATEWAY_ADDRESS)")
	f.StringVar(&k8sFlags.frontAddress, "kubernetes-front-address", env("NEMOCLAVE_K8S_FRONT_ADDRESS", ":7443"), "address the gateway listens on for sandbox pods ($NEMOCLAVE_K8S_FRONT_ADDRESS)")
	f.StringVar(&k8sFlags.audience, "kubernetes-audience", env("NEMOCLAVE_K8S_AUDIENCE", "nemoclave-gateway"), "audience of the sandbox pods' projected tokens ($NEMOCLAVE_K8S_AUDIENCE)")
	f.StringVar(&k8sFlags.frontCert, "kubernetes-front-tls-cert", env("NEMOCLAVE_K8S_FRONT_TLS_CERT", ""), "TLS certificate (PEM) the Front presents to sandbox pods, re-read when it changes (cert-manager); needs --kubernetes-front-tls-key and --kubernetes-front-ca ($NEMOCLAVE_K8S_FRONT_TLS_CERT)")
	f.StringVar(&k8sFlags.frontKey, "kubernetes-front-tls-key", env("NEMOCLAVE_K8S_FRONT_TLS_KEY", ""), "private key of --kubernetes-front-tls-cert ($NEMOCLAVE_K8S_FRONT_TLS_KEY)")
	f.StringVar(&k8sFlags.frontCA, "kubernetes-front-ca", env("NEMOCLAVE_K8S_FRONT_CA", ""), "CA (PEM) sandbox pods verify the Front's certificate with ($NEMOCLAVE_K8S_FRONT_CA)")
	f.StringArrayVar(&k8sFlags.tolerations, "kubernetes-toleration", splitList(env("NEMOCLAVE_K8S_TOLERATIONS", "")), "let sandbox pods onto nodes with this taint, written as the taint: key=value:Effect or key:Effect (repeatable; $NEMOCLAVE_K8S_TOLERATIONS, comma-separated)")
	f.StringVar(&k8sFlags.schedulingFile, "kubernetes-scheduling-file", env("NEMOCLAVE_K8S_SCHEDULING_FILE", ""), "YAML or JSON file with nodeSelector, tolerations, affinity and topologySpreadConstraints for sandbox pods, as in a pod spec ($NEMOCLAVE_K8S_SCHEDULING_FILE)")
	f.StringVar(&k8sFlags.credentialsSecret, "kubernetes-credentials-secret", env("NEMOCLAVE_K8S_CREDENTIALS_SECRET", ""), "namespace/name of a Secret whose keys are provider credentials, looked up before the other stores ($NEMOCLAVE_K8S_CREDENTIALS_SECRET)")
	addControllerFlags(f, env)
}

// kubernetesAvailable is validate's answer for driver = "kubernetes": the
// daemon `nemoclave run` starts has no flags, so the environment it
// inherits is its configuration, read by the same rule as kubernetesConfig
// without loading anything.
func kubernetesAvailable() error {
	if os.Getenv("NEMOCLAVE_KUBECONFIG") != "" {
		return nil
	}
	if os.Getenv("NEMOCLAVE_K8S_IMAGE") != "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return nil // in a pod: the in-cluster account
	}
	return runtime.DriverUnavailable("kubernetes", []string{"local"})
}

// validateCredentialStore is the store the daemon would resolve
// credentials from: the Secret of $NEMOCLAVE_K8S_CREDENTIALS_SECRET when
// set, then credentials.json, then the environment.
func validateCredentialStore(ctx context.Context, home string) (credentials.Backend, error) {
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

// kubernetesConfig returns the cluster to use, or nil when there is none.
func kubernetesConfig() (*rest.Config, error) {
	if k8sFlags.kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", k8sFlags.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: load --kubeconfig %s: %w", k8sFlags.kubeconfig, err)
		}
		return cfg, nil
	}
	if k8sFlags.image == "" {
		return nil, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, errors.New("kubernetes: --kubernetes-image is set but there is no cluster: pass --kubeconfig, or run the daemon in a pod")
	}
	return cfg, err
}

// setupDaemonKubernetes builds the kubernetes driver (and the local one
// beside it) when the daemon has a cluster; ctx bounds the driver's
// informer and Front.
func setupDaemonKubernetes(ctx context.Context, home string, logger *slog.Logger) (daemonKubernetes, error) {
	out := noKubernetes()
	cfg, err := kubernetesConfig()
	if err != nil || cfg == nil {
		return out, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return out, fmt.Errorf("kubernetes: %w", err)
	}
	if k8sFlags.credentialsSecret != "" {
		ns, name, ok := strings.Cut(k8sFlags.credentialsSecret, "/")
		if !ok || ns == "" || name == "" {
			return out, fmt.Errorf("--kubernetes-credentials-secret %q: write namespace/name", k8sFlags.credentialsSecret)
		}
		out.wrap = secretCredentials(ctx, &credentials.KubernetesSecret{Client: client, Namespace: ns, Secret: name}, logger)
	}
	if k8sFlags.image == "" {
		return out, errors.New("kubernetes: --kubernetes-image (or $NEMOCLAVE_K8S_IMAGE) is required: the image of the sandbox pods, with the nemoclave binary at /usr/local/bin/nemoclave")
	}
	var size int64
	if k8sFlags.workspaceSize != "" {
		q, err := resource.ParseQuantity(k8sFlags.workspaceSize)
		if err != nil {
			return out, fmt.Errorf("--kubernetes-workspace-size %q: %w", k8sFlags.workspaceSize, err)
		}
		size = q.Value()
	}
	sched, nodeSelector, err := kubernetesScheduling()
	if err != nil {
		return out, err
	}
	ln, err := net.Listen("tcp", k8sFlags.frontAddress)
	if err != nil {
		return out, fmt.Errorf("kubernetes: listen for sandbox pods on --kubernetes-front-address %s: %w", k8sFlags.frontAddress, err)
	}
	var frontCA []byte
	if k8sFlags.frontCert != "" || k8sFlags.frontKey != "" || k8sFlags.frontCA != "" {
		if k8sFlags.frontCert == "" || k8sFlags.frontKey == "" || k8sFlags.frontCA == "" {
			ln.Close()
			return out, errors.New("kubernetes: TLS on the Front needs all of --kubernetes-front-tls-cert, --kubernetes-front-tls-key and --kubernetes-front-ca")
		}
		if frontCA, err = os.ReadFile(k8sFlags.frontCA); err != nil {
			ln.Close()
			return out, fmt.Errorf("kubernetes: read --kubernetes-front-ca: %w", err)
		}
		kp := &reloadingKeyPair{cert: k8sFlags.frontCert, key: k8sFlags.frontKey}
		if _, err := kp.get(nil); err != nil {
			ln.Close()
			return out, err
		}
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: kp.get, MinVersion: tls.VersionTLS13})
	}
	front := sbk8s.NewFront(ln, sbk8s.NewAuthenticator(client, k8sFlags.audience), func(msg string, args ...any) { logger.Warn(msg, args...) })
	go func() { _ = front.Serve(ctx) }()
	d, err := sbk8s.New(ctx, sbk8s.Options{
		Client: client, Config: cfg, Namespace: k8sFlags.namespace, Image: k8sFlags.image,
		RuntimeClassName: k8sFlags.runtimeClass, StorageClass: k8sFlags.storageClass, StorageBytes: size,
		Audience: k8sFlags.audience, GatewayNamespace: k8sFlags.gatewayNamespace, GatewayService: k8sFlags.gatewayService,
		GatewayAddress: k8sFlags.gatewayAddress, Front: front, Logger: logger, FrontCA: frontCA,
		Scheduling: sched, NodeSelector: nodeSelector,
		// Replicas under a leader Lease hand their pods over on shutdown.
		KeepPodsOnShutdown: ctrlFlags.enabled,
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
	gwNS := k8sFlags.gatewayNamespace
	if gwNS == "" {
		gwNS = k8sFlags.namespace
	}
	out.withRuntime = withRuntimeHook(cfg, d, home, gwNS, logger)

	logger.Info("kubernetes driver ready", "namespace", k8sFlags.namespace, "front", ln.Addr().String())
	return out, nil
}

// kubernetesScheduling is the sandbox pods' placement from
// --kubernetes-scheduling-file and --kubernetes-toleration (added to the
// file's tolerations).
func kubernetesScheduling() (sbk8s.Scheduling, map[string]string, error) {
	var s sbk8s.Scheduling
	var nodeSelector map[string]string
	if k8sFlags.schedulingFile != "" {
		var err error
		if s, nodeSelector, err = sbk8s.LoadScheduling(k8sFlags.schedulingFile); err != nil {
			return s, nil, fmt.Errorf("kubernetes: --kubernetes-scheduling-file: %w", err)
		}
	}
	for _, t := range k8sFlags.tolerations {
		tol, err := sbk8s.ParseToleration(t)
		if err != nil {
			return s, nil, fmt.Errorf("kubernetes: --kubernetes-toleration: %w", err)
		}
		s.Tolerations = append(s.Tolerations, tol)
	}
	return s, nodeSelector, nil
}

// splitList splits a comma-separated environment value, dropping empties.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
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

// kubernetesCommands are the commands only the kubernetes build has: the
// in-pod supervisor.
func kubernetesCommands(g *Globals) []*cobra.Command {
	return []*cobra.Command{newSupervisorCmd(g)}
}

func newSupervisorCmd(_ *Globals) *cobra.Command {
	return &cobra.Command{
		Use:    sbk8s.SupervisorCommand + " run | exec [--env K=V]... -- CMD...",
		Short:  "Supervise the agent inside a Kubernetes sandbox pod (run by the pod, not by people)",
		Hidden: true,
		// Flags belong to the command it runs.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := sbk8s.RunSupervisor(args); code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
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
