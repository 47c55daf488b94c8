package monitor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Client asks a running agent's monitoring endpoint for its status.
type Client struct {
	Listen string // the agent's monitor.listen
	Token  string // monitor.token, if set
	// CertFile is the endpoint's certificate (monitor.tls_cert): when set
	// the client uses HTTPS and trusts it, as it may be self-signed.
	CertFile string
	Timeout  time.Duration // default 5s
}

// Status fetches /status.
func (c Client) Status(ctx context.Context) (*Snapshot, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	hc := &http.Client{Timeout: timeout}
	if c.CertFile != "" {
		pem, err := os.ReadFile(c.CertFile)
		if err != nil {
			return nil, fmt.Errorf("monitor certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("monitor certificate %s holds no PEM certificate", c.CertFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statusURL(c.Listen, c.CertFile != ""), nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the agent at %s: %w", c.Listen, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("agent at %s answered %s: %s", c.Listen, resp.Status, msg)
	}
	var s Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("agent status: %w", err)
	}
	s.Lag = time.Duration(s.LagSec * float64(time.Second))
	return &s, nil
}
