package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ca is the cluster's certificate authority, generated in Go (crypto/x509).
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126)) }

func newCA(cn string) (*ca, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key}, nil
}

// certSpec says what a leaf certificate is for.
type certSpec struct {
	file   string // base name under pki/
	cn     string
	org    []string
	dns    []string
	ips    []string
	server bool
}

// issue writes <file>.crt and <file>.key signed by the CA.
func (c *ca) issue(p paths, s certSpec) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.org},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     s.dns,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, ip := range s.ips {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			return fmt.Errorf("certificate %s: bad IP %q", s.file, ip)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return err
	}
	if err := writePEM(p.pki(s.file+".crt"), "CERTIFICATE", der); err != nil {
		return err
	}
	return writeKey(p.pki(s.file+".key"), key)
}

// FrontProxyClient is the name the API server's aggregation proxy presents to extension API servers.
const FrontProxyClient = "front-proxy-client"

// writeCA generates a CA and writes <file>.crt and <file>.key.
func writeCA(p paths, file, cn string) (*ca, error) {
	c, err := newCA(cn)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.pki(file+".crt"), "CERTIFICATE", c.cert.Raw); err != nil {
		return nil, err
	}
	return c, writeKey(p.pki(file+".key"), c.key)
}

func writePEM(path, typ string, der []byte) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

// writePKI generates the CA, every component's certificate, the service-account key pair and the
// kubeconfigs. It is regenerated on every fresh start (a new cluster gets new credentials).
func writePKI(p paths, hostIP string, nodes []Node) error {
	c, err := writeCA(p, "ca", "go-service-local-ca")
	if err != nil {
		return err
	}
	// The aggregation layer's own CA: the API server proxies to extension API servers (metrics-server)
	// with the front-proxy-client certificate, and they trust the user headers of requests signed by it.
	fp, err := writeCA(p, "front-proxy-ca", "go-service-front-proxy-ca")
	if err != nil {
		return err
	}
	if err := fp.issue(p, certSpec{file: "front-proxy-client", cn: FrontProxyClient}); err != nil {
		return fmt.Errorf("certificate front-proxy-client: %w", err)
	}
	specs := []certSpec{
		{file: "apiserver", cn: "kube-apiserver", server: true,
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			ips: []string{"127.0.0.1", APIServiceIP, hostIP}},
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", org: []string{"system:masters"}},
		{file: "admin", cn: "admin", org: []string{"system:masters"}},
		{file: "controller-manager", cn: "system:kube-controller-manager"},
		{file: "scheduler", cn: "system:kube-scheduler"},
		{file: "kube-proxy", cn: "system:kube-proxy"},
	}
	for _, n := range nodes {
		specs = append(specs, certSpec{file: n.proc(compKubelet), cn: "system:node:" + n.Name, org: []string{"system:nodes"},
			server: true, dns: []string{n.Name}, ips: []string{n.IP, "127.0.0.1"}})
	}
	for _, s := range specs {
		if err := c.issue(p, s); err != nil {
			return fmt.Errorf("certificate %s: %w", s.file, err)
		}
	}
	sa, err := newKey()
	if err != nil {
		return err
	}
	if err := writeKey(p.pki("sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(p.pki("sa.pub"), "PUBLIC KEY", pub); err != nil {
		return err
	}

	server := "https://" + hostIP + ":6443"
	kubeconfigs := map[string]string{
		"admin": "admin", "controller-manager": "controller-manager", "scheduler": "scheduler", "kube-proxy": "kube-proxy",
	}
	for _, n := range nodes {
		kubeconfigs[n.proc(compKubelet)] = n.proc(compKubelet)
	}
	for name, cert := range kubeconfigs {
		if err := writeKubeconfig(p, p.kubeconfig(name), server, cert); err != nil {
			return err
		}
	}
	return writeKubeconfig(p, p.admin(), server, "admin")
}

func writeKubeconfig(p paths, path, server, cert string) error {
	caData, err := os.ReadFile(p.pki("ca.crt"))
	if err != nil {
		return err
	}
	crt, err := os.ReadFile(p.pki(cert + ".crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(p.pki(cert + ".key"))
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["go-service-local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	cfg.AuthInfos[cert] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts["go-service-local"] = &clientcmdapi.Context{Cluster: "go-service-local", AuthInfo: cert}
	cfg.CurrentContext = "go-service-local"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}
