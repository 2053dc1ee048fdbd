package kubernetes

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// waitingFor describes what a pod that does not run yet waits for, for an
// operator watching `nemoclave run`: its phase, why (not scheduled, the
// container's waiting reason) and the last event the cluster recorded
// about it (pulling an image, a failed mount, no node with room).
func waitingFor(p *corev1.Pod, last *corev1.Event) string {
	if p == nil {
		return "waiting for the pod to be created"
	}
	phase := string(p.Status.Phase)
	if phase == "" {
		phase = string(corev1.PodPending)
	}
	parts := []string{"pod " + phase}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			parts = append(parts, "not scheduled ("+c.Reason+")")
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "sandbox" && cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			parts = append(parts, "container "+cs.State.Waiting.Reason)
		}
	}
	s := strings.Join(parts, ", ")
	if last != nil {
		msg := strings.TrimSpace(last.Message)
		if len(msg) > 160 {
			msg = msg[:157] + "..."
		}
		s += fmt.Sprintf("; last event: %s: %s", last.Reason, msg)
	}
	return s
}

// latestEvent is the most recent of events: by the time it last happened,
// then by when it was first recorded.
func latestEvent(events []corev1.Event) *corev1.Event {
	var best *corev1.Event
	var bestAt metav1.Time
	for i := range events {
		e := &events[i]
		at := e.LastTimestamp
		if at.IsZero() && !e.EventTime.IsZero() {
			at = metav1.NewTime(e.EventTime.Time)
		}
		if at.IsZero() {
			at = e.CreationTimestamp
		}
		if best == nil || bestAt.Before(&at) {
			best, bestAt = e, at
		}
	}
	return best
}

// podProgress describes what name's pod waits for. The last event is
// best effort: a daemon not allowed to list events still reports the
// phase.
func (d *Driver) podProgress(ctx context.Context, name string) string {
	p := d.w.pod(d.opts.Namespace, name)
	var last *corev1.Event
	if p != nil {
		sel := fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": p.Name}.AsSelector().String()
		if evs, err := d.opts.Client.CoreV1().Events(d.opts.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel}); err == nil {
			last = latestEvent(evs.Items)
		}
	}
	return waitingFor(p, last)
}
