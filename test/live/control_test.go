package live

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/go-service/go-service/test/kube"
)

// controlNamespace holds the suite's control Service: two pods of the reference service, one per node
// where there are two, that no scenario disrupts. Every gated run sends a control client to it from
// the host and from its load pod, so a failure or a stall the control shares is the machine's or the
// cluster's, and the run's report says so.
const controlNamespace = "go-service-control"

var control struct {
	mu  sync.Mutex
	env *kube.Env // the cluster it runs on (the slow-propagation tests replace the cluster)
	url string
}

// controlURL returns the control Service's URL, creating it on first use on this cluster (it is
// deleted at the end of the suite, and a leftover of an interrupted run is replaced).
func controlURL(t *testing.T) string {
	t.Helper()
	control.mu.Lock()
	defer control.mu.Unlock()
	if control.env != env {
		url, err := startControl(appImage(t))
		require.NoError(t, err, "the control Service")
		control.env, control.url = env, url
	}
	return control.url
}

func startControl(img string) (string, error) {
	ctx := context.Background()
	if err := deleteControl(); err != nil {
		return "", err
	}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controlNamespace,
		Labels: map[string]string{"go-service.test/live": "true"}}}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	return env.StartControl(ctx, controlNamespace, img)
}

// deleteControl deletes the control namespace, if any, and waits until it is gone.
func deleteControl() error {
	ctx := context.Background()
	err := env.Client.CoreV1().Namespaces().Delete(ctx, controlNamespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return kube.Poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
		_, err := env.Client.CoreV1().Namespaces().Get(ctx, controlNamespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("namespace %s still exists (%v)", controlNamespace, err)
	})
}
