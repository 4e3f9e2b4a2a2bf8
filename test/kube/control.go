package kube

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/go-service/go-service/disrupt"
)

// StartControl runs, in the namespace ns (which must exist), a control Service for
// disrupt.Options.ControlURL: a Deployment "control" of two pods of image (the reference service, never
// pulled), spread over the nodes, and its Service. No scenario may touch it. It waits until the pods
// are ready and returns the Service's URL.
func (e *Env) StartControl(ctx context.Context, ns, image string) (string, error) {
	labels := map[string]string{"app": "control"}
	replicas := int32(2)
	no, yes, uid := false, true, int64(65532)
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromString("http")}}, PeriodSeconds: 1}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "control"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelHostname,
						WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}},
					Containers: []corev1.Container{{
						Name: "app", Image: image, ImagePullPolicy: corev1.PullNever,
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: probe,
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
	if _, err := e.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("the control Deployment: %w", err)
	}
	svc, err := e.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "control"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("the control Service: %w", err)
	}
	if err := Poll(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, error) {
		return disrupt.RolledOut(ctx, e.Client, ns, "control", replicas)
	}); err != nil {
		return "", fmt.Errorf("the control Deployment did not roll out: %w\n%s", err, e.Describe(ns))
	}
	return fmt.Sprintf("http://%s/", svc.Spec.ClusterIP), nil
}
