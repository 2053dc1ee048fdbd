package blueprints

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/zclconf/go-cty/cty"
)

// valueMark is the kind of cty mark the evaluator puts on values.
type valueMark string

const (
	// markCredential is carried by every value derived from credential().
	// A marked value anywhere except a plugin config attribute the plugin
	// declares as a credential is a diagnostic.
	markCredential valueMark = "credential"
	// markSensitive is carried by values of variables declared sensitive;
	// plan output redacts them.
	markSensitive valueMark = "sensitive"
)

// credentialType is the cty type credential() returns. Its JSON form, as a
// plugin config value, is {"credential": "NAME"}.
var credentialType = cty.Object(map[string]cty.Type{"credential": cty.String})

func credentialValue(name string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"credential": cty.StringVal(name)}).Mark(markCredential)
}

// credentialName returns the credential a value references, if it is a
// credential() result (marked and of the credential shape).
func credentialName(v cty.Value) (string, bool) {
	if !v.HasMark(markCredential) {
		return "", false
	}
	u, _ := v.UnmarkDeep()
	if !u.Type().Equals(credentialType) || !u.IsKnown() || u.IsNull() {
		return "", false
	}
	n := u.GetAttr("credential")
	if !n.IsKnown() || n.IsNull() {
		return "", false
	}
	return n.AsString(), true
}

// CredentialRef says where a plugin config needs a credential. The host
// resolves Name from its credential store and puts the secret at Path in
// the config it sends the plugin, replacing the {"credential": "NAME"}
// placeholder. Nothing else ever sees the value.
type CredentialRef struct {
	// Path is the attribute path inside the config block: attribute names,
	// list indexes as decimal strings, map keys as they are.
	Path []string `json:"path"`
	// Name is the credential's name in the host's store (NVIDIA_API_KEY).
	Name string `json:"name"`
}

// ResolveCredentials returns config with every credential placeholder
// listed in refs replaced by the secret lookup returns. It is the only
// place a credential value meets a config, and it runs in the host, right
// before Configure. The input is not modified.
func ResolveCredentials(config json.RawMessage, refs []CredentialRef, lookup func(name string) (string, error)) (json.RawMessage, error) {
	if len(refs) == 0 {
		return config, nil
	}
	var root any
	if err := json.Unmarshal(config, &root); err != nil {
		return nil, fmt.Errorf("plugin config is not JSON: %w", err)
	}
	for _, ref := range refs {
		secret, err := lookup(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("credential %q: %w (add it with `nemoclave provider` or set it in the credential store)", ref.Name, err)
		}
		root, err = setPath(root, ref.Path, secret)
		if err != nil {
			return nil, fmt.Errorf("credential %q: %w", ref.Name, err)
		}
	}
	return json.Marshal(root)
}

func setPath(node any, path []string, v string) (any, error) {
	return replaceAt(node, path, func(old any) (any, error) {
		m, ok := old.(map[string]any)
		if !ok || len(m) != 1 || m["credential"] == nil {
			return nil, fmt.Errorf("no credential placeholder at %v", path)
		}
		return v, nil
	})
}

// replaceAt replaces the JSON value at path (attribute names, list indexes
// as decimal strings, map keys) with what fn returns for the old value.
func replaceAt(node any, path []string, fn func(old any) (any, error)) (any, error) {
	if len(path) == 0 {
		return fn(node)
	}
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[path[0]]
		if !ok {
			return nil, fmt.Errorf("config has no attribute %q", path[0])
		}
		nv, err := replaceAt(child, path[1:], fn)
		if err != nil {
			return nil, err
		}
		n[path[0]] = nv
		return n, nil
	case []any:
		i, err := strconv.Atoi(path[0])
		if err != nil || i < 0 || i >= len(n) {
			return nil, fmt.Errorf("config has no element %q", path[0])
		}
		nv, err := replaceAt(n[i], path[1:], fn)
		if err != nil {
			return nil, err
		}
		n[i] = nv
		return n, nil
	}
	return nil, fmt.Errorf("config path %v does not exist", path)
}

// CredentialPlaceholder is the string a plugin's ValidateConfig sees in
// place of credential("NAME"): it tells the plugin a credential will be
// there without revealing it.
func CredentialPlaceholder(name string) string { return "${credential:" + name + "}" }
