//go:build kubernetes

package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// KubernetesSecret is the backend for a daemon running in a cluster: each
// key of one Secret is a credential name, each value the credential. The
// Secret usually comes from External Secrets (AWS Secrets Manager) or the
// Secrets Store CSI driver (Azure Key Vault); only the daemon's service
// account may read it, and sandbox pods never mount it.
//
// Reading needs get on the Secret (deploy/base/rbac.yaml grants exactly
// that, by name). Set and Delete need patch; without it they fail with an
// error saying to change the source of the Secret instead.
type KubernetesSecret struct {
	Client    kubernetes.Interface
	Namespace string
	Secret    string
}

// Name is "kubernetes".
func (k *KubernetesSecret) Name() string { return "kubernetes" }

func (k *KubernetesSecret) where() string { return k.Namespace + "/" + k.Secret }

func (k *KubernetesSecret) read(ctx context.Context) (*corev1.Secret, error) {
	s, err := k.Client.CoreV1().Secrets(k.Namespace).Get(ctx, k.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("credentials: the daemon may not read Secret %s; grant get on it (deploy/base/rbac.yaml)", k.where())
	}
	if err != nil {
		// The API error names the Secret, never a value.
		return nil, fmt.Errorf("credentials: read Secret %s: %w", k.where(), err)
	}
	return s, nil
}

// Get returns the Secret's key name.
func (k *KubernetesSecret) Get(ctx context.Context, name string) (Secret, error) {
	if err := ValidName(name); err != nil {
		return Secret{}, err
	}
	s, err := k.read(ctx)
	if err != nil {
		return Secret{}, err
	}
	if s == nil {
		return Secret{}, fmt.Errorf("%w: Secret %s does not exist", ErrNotFound, k.where())
	}
	v, ok := s.Data[name]
	if !ok || len(v) == 0 {
		return Secret{}, fmt.Errorf("%w: %s is not a key of Secret %s", ErrNotFound, name, k.where())
	}
	return NewSecret(string(v)), nil
}

// List names the Secret's keys that are valid credential names.
func (k *KubernetesSecret) List(ctx context.Context) ([]Info, error) {
	s, err := k.read(ctx)
	if err != nil || s == nil {
		return nil, err
	}
	var out []Info
	for name := range s.Data {
		if ValidName(name) == nil {
			out = append(out, Info{Name: name, Backend: "kubernetes", CreatedAt: s.CreationTimestamp.Time})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Set adds or replaces one key, creating the Secret when it is missing.
func (k *KubernetesSecret) Set(ctx context.Context, name string, value Secret) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if value.Empty() {
		return errors.New("credentials: refusing to store an empty value")
	}
	patch, err := json.Marshal(map[string]any{"data": map[string][]byte{name: []byte(value.Reveal())}})
	if err != nil {
		return err
	}
	_, err = k.Client.CoreV1().Secrets(k.Namespace).Patch(ctx, k.Secret, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		_, err = k.Client.CoreV1().Secrets(k.Namespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: k.Secret, Namespace: k.Namespace},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{name: []byte(value.Reveal())},
		}, metav1.CreateOptions{})
	}
	return k.writeError(name, err)
}

// Delete removes one key.
func (k *KubernetesSecret) Delete(ctx context.Context, name string) error {
	if _, err := k.Get(ctx, name); err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"data": map[string]any{name: nil}})
	if err != nil {
		return err
	}
	_, err = k.Client.CoreV1().Secrets(k.Namespace).Patch(ctx, k.Secret, types.MergePatchType, patch, metav1.PatchOptions{})
	return k.writeError(name, err)
}

func (k *KubernetesSecret) writeError(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("credentials: the daemon may not change Secret %s (read-only by design); change %s where the Secret comes from (AWS Secrets Manager, Azure Key Vault) instead", k.where(), name)
	default:
		return fmt.Errorf("credentials: write %s to Secret %s: %w", name, k.where(), err)
	}
}
