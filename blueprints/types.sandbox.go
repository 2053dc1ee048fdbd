package blueprints

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/volume"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Sandbox drivers.
const (
	DriverLocal      = "local"
	DriverKubernetes = "kubernetes"
)

// Sandbox is one sandbox block with its effective policy.
type Sandbox struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// PolicyName is the policy block it uses.
	PolicyName string `json:"policy_name"`
	// Policy is the effective policy: the policy block with its presets
	// merged, a copy owned by this sandbox (operator approvals add to it at
	// run time without touching other sandboxes).
	Policy *policy.Policy `json:"policy"`
	// Workspace is the absolute host directory mounted at /workspace;
	// empty means a fresh temporary directory.
	Workspace string    `json:"workspace,omitempty"`
	Resources Resources `json:"resources"`
	// Environment is set in the agent's process. It never holds
	// credentials: credential() and sensitive variables are refused here.
	Environment map[string]string `json:"environment,omitempty"`
	// Kubernetes holds kubernetes driver settings; nil for local.
	Kubernetes *KubernetesSettings `json:"kubernetes,omitempty"`
	DeclRange  hcl.Range           `json:"-"`
}

// Resources are cgroup limits. Zero means the driver's default.
type Resources struct {
	CPUs        float64 `json:"cpus,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	PIDs        int     `json:"pids,omitempty"`
	// TmpBytes bounds the sandbox's /tmp (and /dev/shm): a write past it
	// fails with "No space left on device" (P11).
	TmpBytes int64 `json:"tmp_bytes,omitempty"`
	// WorkspaceBytes (`workspace_size`) bounds the workspace's total size
	// for the agent and the gateway tools alike: a write past it fails with
	// "No space left on device" (P11). Zero: only single files are capped
	// (the policy's process.max_file_size_mb).
	WorkspaceBytes int64 `json:"workspace_bytes,omitempty"`
	// AllowUnlimited (`allow_unlimited = true`) lets the sandbox run
	// without cgroup limits (and without the workspace_size bound) when the
	// host cannot apply them (an ordinary user without a delegated cgroup,
	// a daemon not running as root). Weaker: the agent can then use all
	// the memory, CPU, processes and disk the user may. Every other
	// protection still applies. Off by default: such a sandbox refuses to
	// start.
	AllowUnlimited bool `json:"allow_unlimited,omitempty"`
}

// KubernetesSettings are kubernetes driver settings.
type KubernetesSettings struct {
	Namespace    string            `json:"namespace,omitempty"`
	RuntimeClass string            `json:"runtime_class,omitempty"`
	StorageClass string            `json:"storage_class,omitempty"`
	StorageBytes int64             `json:"storage_bytes,omitempty"`
	Image        string            `json:"image,omitempty"`
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// Tolerations (a list), Affinity (an object) and
	// TopologySpreadConstraints (a list) are written with the Kubernetes
	// pod spec's own field names and kept as JSON: the blueprint language
	// does not know their schema, the kubernetes driver decodes and
	// validates them (sandbox.Spec.DriverConfig).
	Tolerations               json.RawMessage `json:"tolerations,omitempty"`
	Affinity                  json.RawMessage `json:"affinity,omitempty"`
	TopologySpreadConstraints json.RawMessage `json:"topology_spread_constraints,omitempty"`
}

var sandboxSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "driver"}, {Name: "policy", Required: true}, {Name: "workspace"}, {Name: "environment"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "resources"}, {Type: "kubernetes"}},
}
var resourcesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "cpus"}, {Name: "memory"}, {Name: "pids"}, {Name: "tmp"}, {Name: "workspace_size"}, {Name: "allow_unlimited"}}}
var kubernetesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "namespace"}, {Name: "runtime_class"}, {Name: "storage_class"}, {Name: "storage"},
	{Name: "image"}, {Name: "node_selector"},
	{Name: "tolerations"}, {Name: "affinity"}, {Name: "topology_spread_constraints"},
}}

// reservedEnv are set by the sandbox and gateway; a blueprint may not
// override them (that would route the agent around the gateway).
var reservedEnv = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretLooking catches environment names that usually hold secrets.
var secretLooking = regexp.MustCompile(`(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)`)

func (e *evaluator) decodeSandboxes(bp *Blueprint) []*Sandbox {
	out := []*Sandbox{}
	for _, name := range sortedKeys(e.decl.sandboxes) {
		if s := e.decodeSandbox(e.decl.sandboxes[name], bp); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (e *evaluator) decodeSandbox(b *hcl.Block, bp *Blueprint) *Sandbox {
	content, diags := e.expand(b.Body).Content(sandboxSchema)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	s := &Sandbox{Name: b.Labels[0], DeclRange: b.DefRange}
	if err := sandbox.ValidName(s.Name); err != nil {
		e.errorf(b.LabelRanges[0].Ptr(), "Invalid sandbox name", "%v. The name becomes the sandbox's directory, cgroup and Kubernetes object names, so every driver takes the same rule.", err)
	}
	before := len(e.diags)
	s.Driver = e.oneOf(content.Attributes["driver"], DriverLocal, DriverLocal, DriverKubernetes)
	if len(e.diags) == before {
		e.checkDriver(s, content.Attributes["driver"])
	}
	s.PolicyName = e.ref(content.Attributes["policy"], rootPolicy, "")
	if p := bp.Policy(s.PolicyName); p != nil {
		s.Policy = p.Clone()
	}
	if ws := e.str(content.Attributes["workspace"]); ws != "" {
		if !filepath.IsAbs(ws) {
			ws = filepath.Join(e.dir, ws)
		}
		s.Workspace = filepath.Clean(ws)
		if root := e.loader.opts.Root; root != "" && !e.insideUpload(s.Workspace) {
			e.errorf(content.Attributes["workspace"].Expr.Range().Ptr(), "Workspace outside the upload",
				"workspace %q is outside the uploaded blueprint's directory: a remote run's workspace is a directory of its upload (for example \"./workspace\", sent with the blueprint), never another directory of the daemon's host. Without a workspace attribute the daemon makes one of its own.", ws)
		}
	}
	if a := content.Attributes["workspace"]; a != nil && s.Policy != nil && !visible(s.Policy, "/workspace") {
		e.warnf(a.Expr.Range().Ptr(), "Workspace not visible", "The workspace is mounted at /workspace, but policy %q lists neither /workspace nor a parent in read_only or read_write, so the agent cannot see it. Add \"/workspace\" to the policy's filesystem read_write list.", s.PolicyName)
	}
	s.Environment = e.environment(content.Attributes["environment"])
	for _, nb := range content.Blocks {
		switch nb.Type {
		case "resources":
			c, diags := nb.Body.Content(resourcesSchema)
			e.diags = append(e.diags, diags...)
			s.Resources.CPUs = e.float(c.Attributes["cpus"])
			s.Resources.PIDs = e.whole(c.Attributes["pids"])
			s.Resources.MemoryBytes = e.byteSize(c.Attributes["memory"])
			s.Resources.TmpBytes = e.byteSize(c.Attributes["tmp"])
			s.Resources.WorkspaceBytes = e.byteSize(c.Attributes["workspace_size"])
			if a := c.Attributes["workspace_size"]; a != nil && s.Resources.WorkspaceBytes > 0 && s.Resources.WorkspaceBytes < volume.MinBytes {
				e.errorf(a.Expr.Range().Ptr(), "Workspace bound too small", "workspace_size must be at least %d MiB: the file system holding the workspace needs part of it for itself.", volume.MinBytes>>20)
			}
			s.Resources.AllowUnlimited = e.boolean(c.Attributes["allow_unlimited"])
		case "kubernetes":
			if s.Driver != DriverKubernetes {
				e.errorf(nb.DefRange.Ptr(), "Settings for another driver", "A kubernetes block only applies to driver = \"kubernetes\"; this sandbox uses %q. Remove the block or change the driver.", s.Driver)
				continue
			}
			if s.Kubernetes != nil {
				e.errorf(nb.DefRange.Ptr(), "Duplicate kubernetes block", "A sandbox has one kubernetes block.")
				continue
			}
			c, diags := nb.Body.Content(kubernetesSchema)
			e.diags = append(e.diags, diags...)
			s.Kubernetes = &KubernetesSettings{
				Namespace: e.str(c.Attributes["namespace"]), RuntimeClass: e.str(c.Attributes["runtime_class"]),
				StorageClass: e.str(c.Attributes["storage_class"]), StorageBytes: e.byteSize(c.Attributes["storage"]),
				Image: e.str(c.Attributes["image"]), NodeSelector: e.strMap(c.Attributes["node_selector"]),
				Tolerations:               e.podSpecJSON(c.Attributes["tolerations"], true, `[{ key = "nemoclave.dev/sandbox", operator = "Exists", effect = "NoSchedule" }]`),
				Affinity:                  e.podSpecJSON(c.Attributes["affinity"], false, `{ nodeAffinity = { … } }`),
				TopologySpreadConstraints: e.podSpecJSON(c.Attributes["topology_spread_constraints"], true, `[{ maxSkew = 1, topologyKey = "topology.kubernetes.io/zone", whenUnsatisfiable = "ScheduleAnyway" }]`),
			}
		}
	}
	if s.Driver == DriverKubernetes && s.Kubernetes == nil {
		s.Kubernetes = &KubernetesSettings{}
	}
	if s.Kubernetes != nil && s.Kubernetes.StorageBytes > 0 && s.Resources.WorkspaceBytes > 0 {
		e.errorf(b.DefRange.Ptr(), "Two workspace bounds", "With kubernetes storage the workspace is a volume claim of that size, which already bounds it; remove resources.workspace_size or kubernetes.storage.")
	}
	return s
}

// podSpecJSON reads a kubernetes attribute given in the pod spec's shape
// (a list of objects, or one object) as JSON for the driver to decode.
func (e *evaluator) podSpecJSON(a *hcl.Attribute, list bool, example string) json.RawMessage {
	v, ok := e.attrValue(a, cty.DynamicPseudoType)
	if !ok || v.IsNull() {
		return nil
	}
	ty := v.Type()
	if list && !(ty.IsTupleType() || ty.IsListType()) || !list && !(ty.IsObjectType() || ty.IsMapType()) {
		e.errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name, "%s takes the pod spec's shape, as in %s = %s.", a.Name, a.Name, example)
		return nil
	}
	if !e.noCredential(v, a.Expr.Range()) {
		return nil
	}
	v, _ = v.UnmarkDeep()
	raw, err := ctyjson.Marshal(v, ty)
	if err != nil {
		e.errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name, "%s: %v", a.Name, err)
		return nil
	}
	return raw
}

// environment decodes the sandbox environment, refusing anything that
// could carry a credential into the sandbox.
func (e *evaluator) environment(a *hcl.Attribute) map[string]string {
	if a == nil {
		return nil
	}
	v, ok := e.evalExpr(a.Expr, e.general(), allRoots)
	if !ok || !e.noCredential(v, a.Expr.Range()) {
		return nil
	}
	if v.HasMarkDeep(markSensitive) {
		e.errorf(a.Expr.Range().Ptr(), "Sensitive value in sandbox environment", "The environment is readable by everything in the sandbox and shown in plans, so sensitive variables may not flow into it. Secrets belong to plugins: give them with credential(\"NAME\") in a plugin config, where the gateway injects them.")
		return nil
	}
	out := e.strMap(a)
	for _, k := range sortedKeys(out) {
		rng := mapItemRange(a.Expr, k)
		switch {
		case !envNameRE.MatchString(k):
			e.errorf(rng.Ptr(), "Invalid environment variable name", "%q is not a valid environment variable name (letters, digits, underscore).", k)
		case isReservedEnv(k):
			e.errorf(rng.Ptr(), "Reserved environment variable", "%s is set by nemoclave to route the agent through the gateway and cannot be overridden.", k)
		case strings.HasPrefix(k, "NEMOCLAVE_"):
			e.errorf(rng.Ptr(), "Reserved environment variable", "NEMOCLAVE_* variables are set by nemoclave; choose another name than %s.", k)
		case secretLooking.MatchString(k) && out[k] != "":
			e.warnf(rng.Ptr(), "Possible credential in sandbox environment", "%s looks like it holds a secret. The sandbox environment must never hold credentials: configure the plugin that needs it with credential(\"NAME\") instead.", k)
		}
	}
	return out
}

// visible reports whether the policy's filesystem lists dir or a parent.
func visible(p *policy.Policy, dir string) bool {
	for _, list := range [][]string{p.Filesystem.ReadOnly, p.Filesystem.ReadWrite} {
		for _, root := range list {
			if root == "/" || dir == root || strings.HasPrefix(dir, strings.TrimSuffix(root, "/")+"/") {
				return true
			}
		}
	}
	return false
}

// mapItemRange returns the range of key = value inside an object
// expression, or the whole expression when it cannot be found (a map from
// a variable, say).
func mapItemRange(expr hcl.Expression, key string) hcl.Range {
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		return expr.Range()
	}
	for _, kv := range pairs {
		k, diags := kv.Key.Value(nil)
		if diags.HasErrors() || k.Type() != cty.String || k.IsNull() || !k.IsKnown() {
			continue
		}
		if k.AsString() == key {
			return hcl.RangeBetween(kv.Key.Range(), kv.Value.Range())
		}
	}
	return expr.Range()
}

func isReservedEnv(k string) bool {
	for _, r := range reservedEnv {
		if r == k {
			return true
		}
	}
	return false
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?$`)

// byteSize reads "2GiB", "512MiB", "1G", "10Gi" or a number of bytes.
func (e *evaluator) byteSize(a *hcl.Attribute) int64 {
	if a == nil {
		return 0
	}
	v, ok := e.attrValue(a, cty.String)
	if !ok {
		return 0
	}
	n, err := parseByteSize(v.AsString())
	if err != nil {
		e.errorf(a.Expr.Range().Ptr(), "Invalid size", "%s = %q: write a size like \"512MiB\", \"2GiB\" or \"10Gi\".", a.Name, v.AsString())
		return 0
	}
	return n
}

func parseByteSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, strconv.ErrSyntax
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	unit := strings.TrimSuffix(m[2], "B")
	mult := map[string]float64{
		"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
	}[unit]
	if mult == 0 || f*mult > 1<<60 {
		return 0, strconv.ErrRange
	}
	return int64(f * mult), nil
}
