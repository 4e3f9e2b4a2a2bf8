package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/go-service/go-service/cluster/image"
	"github.com/go-service/go-service/internal/repo"
)

// Resource metrics: metrics-server, built from the Go module proxy (pinned as a tool in its own module,
// cluster/metrics-server), so that HorizontalPodAutoscalers act on the local cluster as on a real one.
// It scrapes every kubelet's /metrics/resource, verifying the kubelets' serving certificates with the
// cluster CA, and serves metrics.k8s.io through the API server's aggregation layer.
const (
	MetricsServerVersion = "v0.8.0"
	metricsServerImage   = "docker.io/go-service/metrics-server:0.8.0"
	// MetricsAPIService is the APIService metrics-server serves.
	MetricsAPIService = "v1beta1.metrics.k8s.io"
	// MetricResolution is how often metrics-server scrapes the kubelets (its minimum is 10s).
	MetricResolution = 10 * time.Second
)

// buildMetricsServer returns the metrics-server image tarball, built (cold: about 2 minutes alone, 9
// beside the components on an empty Go cache) unless the cache has it for the same
// cluster/metrics-server go.mod and go.sum and Go version.
func buildMetricsServer(ctx context.Context, o *Options) (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "cluster", "metrics-server")
	key, err := sourceKey(ctx, src, "go.mod", "go.sum")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(o.CacheDir, "metrics-server", key)
	tar := filepath.Join(dir, "metrics-server.tar")
	if _, err := os.Stat(tar); err == nil {
		return tar, nil
	}
	o.Log("metrics: building metrics-server %s from cluster/metrics-server (cold: 2 to 9 minutes)", MetricsServerVersion)
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "metrics-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "sigs.k8s.io/metrics-server/cmd/metrics-server")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build metrics-server: %w\n%s", err, out)
	}
	built, err := image.Build(ctx, image.Spec{Ref: metricsServerImage, Prebuilt: bin, Binary: "/metrics-server"}, dir)
	if err != nil {
		return "", err
	}
	o.Log("metrics: built in %s", time.Since(start).Round(time.Second))
	return tar, os.Rename(built, tar)
}

// startMetrics imports the metrics-server image into every node, deploys it and waits until the
// metrics API serves every node's usage.
func (b *bringUp) startMetrics(ctx context.Context) error {
	client, err := b.importBuilt(ctx, b.metricsBuild, "metrics-server image")
	if err != nil {
		return err
	}
	if err := deployMetricsServer(ctx, client); err != nil {
		return fmt.Errorf("metrics-server %s: %w", MetricsServerVersion, err)
	}
	return Poll(ctx, 90*time.Second, 500*time.Millisecond, func() (bool, error) {
		err := metricsServed(ctx, client, len(b.nodes))
		return err == nil, err
	})
}

// metricsServed says whether the metrics API is available and has the usage of want nodes.
func metricsServed(ctx context.Context, client kubernetes.Interface, want int) error {
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/" + MetricsAPIService).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("APIService %s: %w", MetricsAPIService, err)
	}
	var svc struct {
		Status struct {
			Conditions []struct{ Type, Status, Reason, Message string } `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &svc); err != nil {
		return err
	}
	available := fmt.Errorf("APIService %s has no Available condition yet", MetricsAPIService)
	for _, c := range svc.Status.Conditions {
		if c.Type == "Available" {
			if c.Status == "True" {
				available = nil
			} else {
				available = fmt.Errorf("APIService %s not available: %s: %s", MetricsAPIService, c.Reason, c.Message)
			}
		}
	}
	if available != nil {
		return available
	}
	raw, err = client.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("node metrics: %w", err)
	}
	var nodes struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return err
	}
	if len(nodes.Items) < want {
		return fmt.Errorf("metrics-server has the usage of %d of %d node(s) so far", len(nodes.Items), want)
	}
	return nil
}

// deployMetricsServer creates metrics-server's objects (those of its release manifest, with the kubelets'
// CA verified instead of --kubelet-insecure-tls) and its APIService.
func deployMetricsServer(ctx context.Context, client kubernetes.Interface) error {
	ns := metav1.NamespaceSystem
	name := "metrics-server"
	labels := map[string]string{"k8s-app": name}
	sa := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}
	steps := []func() error{
		func() error {
			return created(client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "system:aggregated-metrics-reader", Labels: map[string]string{
					"rbac.authorization.k8s.io/aggregate-to-admin": "true", "rbac.authorization.k8s.io/aggregate-to-edit": "true",
					"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}}},
			}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server", Labels: labels},
				Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
					{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
				},
			}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "metrics-server-auth-reader", Labels: labels},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "extension-apiserver-authentication-reader"},
				Subjects:   sa,
			}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "metrics-server:system:auth-delegator", Labels: labels},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
				Subjects:   sa,
			}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server", Labels: labels},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:metrics-server"},
				Subjects:   sa,
			}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
					Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("https")}}},
			}, metav1.CreateOptions{}))
		},
		func() error {
			return created(client.AppsV1().Deployments(ns).Create(ctx, metricsServerDeployment(name, labels), metav1.CreateOptions{}))
		},
		func() error {
			body := fmt.Sprintf(`{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{"name":%q,"labels":{"k8s-app":%q}},
"spec":{"service":{"name":%q,"namespace":%q,"port":443},"group":"metrics.k8s.io","version":"v1beta1",
"insecureSkipTLSVerify":true,"groupPriorityMinimum":100,"versionPriority":100}}`, MetricsAPIService, name, name, ns)
			return created(client.Discovery().RESTClient().Post().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices").
				SetHeader("Content-Type", "application/json").Body([]byte(body)).DoRaw(ctx))
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func metricsServerDeployment(name string, labels map[string]string) *appsv1.Deployment {
	one, no, yes, uid := int32(1), false, true, int64(1000)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					PriorityClassName:  "system-cluster-critical",
					// Beside CoreDNS: the drains and evictions of the live suite act on node2.
					NodeSelector: map[string]string{corev1.LabelHostname: "node1"},
					Containers: []corev1.Container{{
						Name: name, Image: metricsServerImage, ImagePullPolicy: corev1.PullNever,
						Args: []string{
							"--cert-dir=/tmp", "--secure-port=10250",
							"--kubelet-preferred-address-types=InternalIP",
							"--kubelet-certificate-authority=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
							"--kubelet-use-node-status-port",
							fmt.Sprintf("--metric-resolution=%s", MetricResolution), "--kubelet-request-timeout=5s",
						},
						Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 10250, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/readyz", Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS}}, PeriodSeconds: 2, FailureThreshold: 3},
						LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/livez", Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS}}, PeriodSeconds: 10, FailureThreshold: 3},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes, RunAsUser: &uid,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}
