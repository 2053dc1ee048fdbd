package kubernetes

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// networkPolicy isolates one sandbox pod: no ingress at all, and egress
// only to the gateway pods on the Front's port. There is no DNS rule: the
// supervisor dials the gateway Service's IP, and the agent reaches
// everything else through the gateway's egress proxy, which resolves names
// after its policy decision. The policy needs a CNI that enforces
// NetworkPolicy (Calico, Cilium, Azure NPM, the VPC CNI with network
// policies enabled); on one that does not, the pod is not isolated.
func (d *Driver) networkPolicy(name string, owner []metav1.OwnerReference) *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(int32(d.opts.GatewayPort))
	tcp := corev1.ProtocolTCP
	peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: d.opts.GatewayPodLabels}}
	if d.opts.GatewayNamespace != d.opts.Namespace {
		peer.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": d.opts.GatewayNamespace}}
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: objectName(name), Namespace: d.opts.Namespace, Labels: sandboxLabels(name), OwnerReferences: owner},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelSandbox: name, LabelComponent: ComponentSandbox}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{peer},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
}
