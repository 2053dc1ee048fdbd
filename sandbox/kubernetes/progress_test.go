package kubernetes

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWaitingFor(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	events := []corev1.Event{
		{Reason: "Scheduled", Message: "Successfully assigned sandboxes/x to node-1", LastTimestamp: metav1.NewTime(t0)},
		{Reason: "Pulling", Message: `Pulling image "ghcr.io/acme/agent:1"`, LastTimestamp: metav1.NewTime(t0.Add(2 * time.Second))},
		{Reason: "Created", Message: "old, recorded without a last timestamp", ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0.Add(time.Second))}},
	}
	pulling := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
		{Name: "sandbox", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
	}}}
	unscheduled := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"},
	}}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		evs  []corev1.Event
		want string
	}{
		{"no pod yet", nil, nil, "waiting for the pod to be created"},
		{"pulling", pulling, events, `pod Pending, container ContainerCreating; last event: Pulling: Pulling image "ghcr.io/acme/agent:1"`},
		{"unscheduled, no events", unscheduled, nil, "pod Pending, not scheduled (Unschedulable)"},
		{"event time only", unscheduled, []corev1.Event{{Reason: "FailedScheduling", Message: "0/3 nodes are available: 3 Insufficient memory.", EventTime: metav1.NewMicroTime(t0)}},
			"pod Pending, not scheduled (Unschedulable); last event: FailedScheduling: 0/3 nodes are available: 3 Insufficient memory."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := waitingFor(tc.pod, latestEvent(tc.evs)); got != tc.want {
				t.Errorf("waitingFor = %q\nwant          %q", got, tc.want)
			}
		})
	}
}
