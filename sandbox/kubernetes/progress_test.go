package kubernetes

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"

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

// WaitRunning, watched, reports what the pod waits for: its phase, the
// container's waiting reason and the pod's last event, each change once.
func TestWaitRunningReportsPhaseAndLastEvent(t *testing.T) {
	d := newTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, p := d.createStarted(t, testSpec("progress"))

	var mu sync.Mutex
	var got []string
	wctx := sandbox.WithProgress(ctx, func(m string) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	type result struct {
		info sandbox.Info
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := d.WaitRunning(wctx, "progress")
		done <- result{info, err}
	}()
	waitSeen := func(want string) {
		t.Helper()
		for {
			mu.Lock()
			for _, m := range got {
				if strings.Contains(m, want) {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				t.Fatalf("never reported %q; reported %q", want, got)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitSeen("pod Pending")

	now := metav1.Now()
	if _, err := d.client.CoreV1().Events(d.ns).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "progress-"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: d.ns, Name: p.Name, UID: p.UID},
		Reason:         "Pulling", Message: `Pulling image "registry.example/nemoclave:test"`,
		Type: corev1.EventTypeNormal, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source: corev1.EventSource{Component: "kubelet"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create event: %v", err)
	}
	d.setStatus(t, "progress", func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "sandbox", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	})
	waitSeen(`pod Pending, container ContainerCreating; last event: Pulling: Pulling image "registry.example/nemoclave:test"`)

	d.setStatus(t, "progress", func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "sandbox", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
	})
	r := <-done
	if r.err != nil || r.info.State != sandbox.StateRunning {
		t.Fatalf("WaitRunning: %+v, %v", r.info, r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Errorf("the same progress was reported twice in a row: %q", got)
		}
	}
}
