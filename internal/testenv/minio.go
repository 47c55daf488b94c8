package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOOptions configures StartMinIO.
type MinIOOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a fresh
	// self-signed CA, whose certificate is written to MinIO.CAFile.
	TLS bool
}

// MinIO is a private single-drive MinIO server. Its buckets support
// versioning and Object Lock.
type MinIO struct {
	Endpoint  string // host:port, 127.0.0.1:<port>
	AccessKey string // root user
	SecretKey string // root password
	TLS       bool   // whether Endpoint speaks HTTPS
	CAFile    string // PEM CA certificate that signs the server's; "" without TLS

	bin         string
	dir         string
	port        int
	consolePort int

	server
}

// StartMinIO starts a fresh MinIO server for the test and stops it, and
// removes its directory, when the test ends.
func StartMinIO(t testing.TB, opts MinIOOptions) *MinIO {
	t.Helper()
	bin := Need(t, ServerMinIO)
	dir := shortTempDir(t, "minio")
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	m := &MinIO{
		AccessKey: "rxvault-test",
		SecretKey: hex.EncodeToString(secret),
		TLS:       opts.TLS,
		bin:       bin,
		dir:       dir,
	}
	m.name, m.logPath, m.stopSig = "minio", filepath.Join(dir, "minio.log"), syscall.SIGTERM
	m.command, m.ready = m.serverCmd, m.ping
	for _, d := range []string{"home", "certs", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if opts.TLS {
		m.CAFile = filepath.Join(dir, "ca.pem")
		certs := filepath.Join(dir, "certs")
		if err := writeTestCerts(m.CAFile, filepath.Join(certs, "public.crt"), filepath.Join(certs, "private.key")); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	err := m.startOnFreePorts(func() (err error) {
		if m.port, err = freePort(); err == nil {
			m.consolePort, err = freePort()
		}
		m.Endpoint = "127.0.0.1:" + strconv.Itoa(m.port)
		return err
	})
	if err != nil {
		err = fmt.Errorf("start minio: %w", err)
	}
	m.forTest(t, err)
	return m
}

// Client returns a minio-go client for the server as its root user.
func (m *MinIO) Client() (*minio.Client, error) { return m.client(0) }

// client makes a client with maxRetries (0: minio-go's default).
func (m *MinIO) client(maxRetries int) (*minio.Client, error) {
	opts := &minio.Options{
		Creds:      credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure:     m.TLS,
		MaxRetries: maxRetries,
	}
	if m.TLS {
		tr, err := minio.DefaultTransport(true)
		if err != nil {
			return nil, fmt.Errorf("minio transport: %w", err)
		}
		cfg, err := m.tlsConfig()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
		opts.Transport = tr
	}
	c, err := minio.New(m.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("minio client: %w", err)
	}
	return c, nil
}

// MakeBucket creates bucket name, with Object Lock (and so versioning)
// enabled when objectLock is set.
func (m *MinIO) MakeBucket(t testing.TB, name string, objectLock bool) {
	t.Helper()
	c, err := m.Client()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := c.MakeBucket(t.Context(), name, minio.MakeBucketOptions{ObjectLocking: objectLock}); err != nil {
		t.Fatalf("testenv: make bucket %s: %v", name, err)
	}
}

// Dir returns the server's temporary directory (data, logs, sockets),
// removed when the test ends.
func (m *MinIO) Dir() string { return m.dir }

func (m *MinIO) tlsConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(m.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", m.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// serverCmd is the server's command line.
func (m *MinIO) serverCmd() *exec.Cmd {
	cmd := exec.Command(m.bin, "server", "--quiet",
		"--address", m.Endpoint,
		"--console-address", "127.0.0.1:"+strconv.Itoa(m.consolePort),
		"--certs-dir", filepath.Join(m.dir, "certs"),
		filepath.Join(m.dir, "data"))
	cmd.Dir = m.dir
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + filepath.Join(m.dir, "home"),
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	}
	return cmd
}

// ping answers once the server serves S3 requests: health may say ready
// while the S3 API still answers "Server not initialized yet", so it
// makes a real, authenticated request too.
func (m *MinIO) ping(ctx context.Context) error {
	hc := &http.Client{}
	scheme := "http"
	if m.TLS {
		cfg, err := m.tlsConfig()
		if err != nil {
			return err
		}
		hc.Transport = &http.Transport{TLSClientConfig: cfg}
		scheme = "https"
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+m.Endpoint+"/minio/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	client, err := m.client(1)
	if err != nil {
		return err
	}
	_, err = client.ListBuckets(ctx)
	return err
}
