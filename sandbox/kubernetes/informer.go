package kubernetes

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// watcher keeps the driver's view of sandbox pods current through a shared
// informer restricted to the driver's namespace and labels, and wakes
// whoever waits on a sandbox when its pod changes.
type watcher struct {
	factory informers.SharedInformerFactory
	pods    listerscorev1.PodLister
	synced  cache.InformerSynced

	mu      sync.Mutex
	changed map[string]chan struct{} // by sandbox name; closed on each change
}

func newWatcher(d *Driver) (*watcher, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, LabelComponent: ComponentSandbox}).String()
	f := informers.NewSharedInformerFactoryWithOptions(d.opts.Client, 10*time.Minute,
		informers.WithNamespace(d.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	w := &watcher{factory: f, changed: map[string]chan struct{}{}}
	inf := f.Core().V1().Pods()
	w.pods, w.synced = inf.Lister(), inf.Informer().HasSynced
	_, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.notify(o) },
		UpdateFunc: func(_, o any) { w.notify(o) },
		DeleteFunc: func(o any) { w.notify(o) },
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watcher) start(ctx context.Context) error {
	w.factory.Start(ctx.Done())
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), w.synced) {
		return fmt.Errorf("kubernetes: the pod informer did not sync within 30s; check that the API server is reachable and that the daemon may list and watch pods in the sandbox namespace")
	}
	return nil
}

func (w *watcher) notify(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	w.wake(p.Labels[LabelSandbox])
}

func (w *watcher) wake(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.changed[name]; ok {
		close(ch)
		delete(w.changed, name)
	}
}

// next returns a channel closed at name's next pod change. Take it before
// reading the pod, so no change falls between the read and the wait.
func (w *watcher) next(name string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.changed[name]
	if !ok {
		ch = make(chan struct{})
		w.changed[name] = ch
	}
	return ch
}

// pod is the informer's copy of name's pod, nil when there is none. Never
// modify it.
func (w *watcher) pod(namespace, name string) *corev1.Pod {
	p, err := w.pods.Pods(namespace).Get(objectName(name))
	if err != nil {
		return nil
	}
	return p
}
