package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Stop deletes the pod with grace: the kubelet sends SIGTERM, and SIGKILL
// once grace has passed. The rest of the sandbox stays until Delete.
func (d *Driver) Stop(ctx context.Context, name string, grace time.Duration) error {
	info, err := d.Status(ctx, name)
	if err != nil {
		return err
	}
	d.opts.Front.unregisterIfSet(name)
	if d.opts.KeepPodsOnShutdown && d.ctx.Err() != nil {
		d.opts.Logger.Info("the daemon is shutting down: leaving the sandbox pod to the replica that adopts it", "sandbox", name)
		return nil
	}
	if info.State != sandbox.StateExited {
		info.State, info.Reason, info.ExitedAt = sandbox.StateExited, "stopped", time.Now()
	}
	d.mu.Lock()
	d.stopped[name] = info
	d.mu.Unlock()
	err = d.opts.Client.CoreV1().Pods(d.opts.Namespace).Delete(ctx, objectName(name), metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(grace / time.Second))})
	if err != nil && !apierrors.IsNotFound(err) {
		return d.apiError("stop the sandbox pod", err)
	}
	return nil
}

// Delete removes every object of the sandbox and waits until its pod is
// gone from the API.
func (d *Driver) Delete(ctx context.Context, name string) error {
	if _, err := d.Status(ctx, name); err != nil {
		return err
	}
	d.opts.Front.unregisterIfSet(name)
	if err := d.deleteObjects(ctx, name); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.stopped, name)
	delete(d.started, name)
	d.mu.Unlock()
	for {
		changed := d.w.next(name)
		if d.w.pod(d.opts.Namespace, name) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox %s: its pod is still terminating: %w", name, ctx.Err())
		case <-changed:
		case <-time.After(5 * time.Second):
		}
	}
}

// deleteObjects deletes the pod first (so nothing runs without its
// NetworkPolicy), then the rest; missing objects are fine.
func (d *Driver) deleteObjects(ctx context.Context, name string) error {
	n, ns, c := objectName(name), d.opts.Namespace, d.opts.Client
	now := metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0)), PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	steps := []struct {
		what string
		del  func() error
	}{
		{"pod", func() error { return c.CoreV1().Pods(ns).Delete(ctx, n, now) }},
		{"network policy", func() error { return c.NetworkingV1().NetworkPolicies(ns).Delete(ctx, n, now) }},
		{"config map", func() error { return c.CoreV1().ConfigMaps(ns).Delete(ctx, n, now) }},
		{"volume claim", func() error { return c.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, n, now) }},
		{"service account", func() error { return c.CoreV1().ServiceAccounts(ns).Delete(ctx, n, now) }},
	}
	var errs []error
	for _, s := range steps {
		if err := s.del(); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, d.apiError("delete the sandbox's "+s.what, err))
		}
	}
	return errors.Join(errs...)
}
