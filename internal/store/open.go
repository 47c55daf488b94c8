package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rxvault/rxvault/internal/logs"
)

// Credentials are static S3 credentials. Their String, GoString and
// LogValue hide the secret parts, so they are safe to print and log.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// CredentialsFromEnv reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN through getenv (os.Getenv, from main).
func CredentialsFromEnv(getenv func(string) string) Credentials {
	return Credentials{
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
	}
}

// String shows the access key id only.
func (c Credentials) String() string {
	return "Credentials{AccessKeyID: " + strconv.Quote(c.AccessKeyID) + ", secret: redacted}"
}

// GoString is String, so %#v hides the secret too.
func (c Credentials) GoString() string { return c.String() }

// LogValue shows the access key id only.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID))
}

// scoped is logs.For for this package: l tagged component=internal/store,
// or a logger that discards if l is nil. The exported constructors apply
// it to the logger they are given, once.
func scoped(l *slog.Logger) *slog.Logger { return logs.For(l, "internal/store") }

// Options are the settings Open applies to every store. Query parameters
// of the store URL override Mode and Retention.
type Options struct {
	Mode        LockMode         // lock mode of new objects; "" means LockCompliance
	Retention   time.Duration    // retention of new objects; required unless the mode is none
	Credentials Credentials      // for S3 stores (see CredentialsFromEnv)
	Retry       RetryPolicy      // zero means DefaultRetryPolicy(); its Logger defaults to Logger
	Concurrency int              // calls in flight per store; <= 0 means 8
	Now         func() time.Time // clock; nil means time.Now
	// Logger receives the stores' logs, tagged component=internal/store;
	// nil discards them.
	Logger *slog.Logger
}

// opener opens one kind of store from its parsed URL.
type opener func(ctx context.Context, u *url.URL, opts Options) (Store, error)

// backends is the explicit registry of store kinds, by URL scheme.
func backends() map[string]opener {
	return map[string]opener{
		"file": openFileURL,
		"s3":   openS3URL,
	}
}

// Open opens the store at rawURL and wraps it with WithLimit and
// WithRetry. Accepted URLs:
//
//	file:///abs/path[?lock=compliance|governance|none&retention=2190h]
//	s3://bucket[/prefix]?endpoint=host:port[&region=r][&tls=false][&ca_file=/ca.pem][&lock=...][&retention=...]
//
// retention takes a Go duration or a number of days ("90d"). tls=false is
// allowed only for a loopback endpoint. Transient failures while opening
// are retried under opts.Retry. Errors are one line naming the problem and
// the fix.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	u, err := parseStoreURL(rawURL)
	if err != nil {
		return nil, err
	}
	open := backends()[u.Scheme]
	opts = opts.withDefaults()
	// Opening checks the store (an S3 bucket's lock configuration), so a
	// store that is briefly unreachable is retried like any call.
	var s Store
	err = opts.Retry.do(ctx, scoped(opts.Retry.Logger), u.Redacted(), "open", "", func(int) error {
		var err error
		s, err = open(ctx, u, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return wrap(s, opts), nil
}

// withDefaults fills in the defaults Open documents, the retry policy
// included.
func (opts Options) withDefaults() Options {
	if opts.Mode == "" {
		opts.Mode = LockCompliance
	}
	policy := opts.Retry
	if policy.isZero() {
		policy = DefaultRetryPolicy()
	} else if policy.MaxAttempts == 0 && policy.BaseDelay == 0 && policy.MaxDelay == 0 {
		// Only hooks were set: keep the default schedule.
		d := DefaultRetryPolicy()
		policy.MaxAttempts, policy.BaseDelay, policy.MaxDelay = d.MaxAttempts, d.BaseDelay, d.MaxDelay
	}
	if policy.MaxAttempts < 1 {
		policy.MaxAttempts = 1
	}
	if policy.Logger == nil {
		policy.Logger = opts.Logger
	}
	opts.Retry = policy
	return opts
}

// wrap adds to an opened store the layers Open promises: WithLimit and
// WithRetry. opts has its defaults.
func wrap(s Store, opts Options) Store {
	n := opts.Concurrency
	if n <= 0 {
		n = 8
	}
	return WithRetry(WithLimit(s, n), opts.Retry)
}

// lockParams applies the lock= and retention= query parameters to opts,
// and rejects any parameter not in allowed.
func lockParams(u *url.URL, opts *Options, allowed ...string) error {
	q := u.Query()
	for k, v := range q {
		known := k == "lock" || k == "retention"
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return fmt.Errorf("store URL %s: unknown parameter %q", u.Redacted(), k)
		}
		if len(v) != 1 {
			return fmt.Errorf("store URL %s: parameter %q given %d times", u.Redacted(), k, len(v))
		}
	}
	if v := q.Get("lock"); v != "" {
		opts.Mode = LockMode(strings.ToLower(v))
	}
	if v := q.Get("retention"); v != "" {
		d, err := parseRetention(v)
		if err != nil {
			return fmt.Errorf("store URL %s: retention=%s: %w", u.Redacted(), v, err)
		}
		opts.Retention = d
	}
	if err := checkLock(opts.Mode, opts.Retention); err != nil {
		return fmt.Errorf("store URL %s: %w", u.Redacted(), err)
	}
	return nil
}

// parseRetention accepts a Go duration ("2190h") or whole days ("90d").
func parseRetention(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("want a duration like 2190h or 90d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 2190h or 90d")
	}
	return d, nil
}

// checkLock validates a lock mode and retention pair.
func checkLock(mode LockMode, retention time.Duration) error {
	switch mode {
	case LockNone:
		return nil
	case LockGovernance, LockCompliance:
		if retention <= 0 {
			return fmt.Errorf("lock mode %s needs a positive retention (set retention=, e.g. 2190h)", mode)
		}
		return nil
	default:
		return fmt.Errorf("unknown lock mode %q: use compliance, governance or none", mode)
	}
}

// CheckURL checks a store URL and its parameters as Open would, without
// touching the store (no I/O, credentials not required). Configuration
// validation uses it so a bad URL is refused before anything runs.
func CheckURL(rawURL string, opts Options) error {
	u, err := parseStoreURL(rawURL)
	if err != nil {
		return err
	}
	if opts.Mode == "" {
		opts.Mode = LockCompliance
	}
	switch u.Scheme {
	case "file":
		_, err = fileConfig(u, opts)
	case "s3":
		var cfg S3Config
		if cfg, err = s3Config(u, opts); err == nil {
			err = cfg.validate()
		}
	}
	return err
}

// parseStoreURL parses rawURL and checks what every store kind shares.
func parseStoreURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store URL: %w: use file:///absolute/path or s3://bucket/prefix?endpoint=host:port", err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("store URL %s: credentials in the URL are not accepted: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", u.Redacted())
	}
	if _, ok := backends()[u.Scheme]; !ok {
		return nil, fmt.Errorf("store URL %s: unknown scheme %q: use file:///absolute/path or s3://bucket/prefix?endpoint=host:port", u.Redacted(), u.Scheme)
	}
	return u, nil
}

func fileConfig(u *url.URL, opts Options) (FileConfig, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
		return FileConfig{}, fmt.Errorf("store URL %s: a file store needs an absolute path, as in file:///var/lib/rxvault/archive", u.Redacted())
	}
	if err := lockParams(u, &opts); err != nil {
		return FileConfig{}, err
	}
	return FileConfig{
		Root: u.Path, Mode: opts.Mode, Retention: opts.Retention,
		Now: opts.Now, Logger: opts.Logger,
	}, nil
}

func openFileURL(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	cfg, err := fileConfig(u, opts)
	if err != nil {
		return nil, err
	}
	s, err := NewFileStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func s3Config(u *url.URL, opts Options) (S3Config, error) {
	if u.Host == "" {
		return S3Config{}, fmt.Errorf("store URL %s: no bucket: use s3://bucket/prefix?endpoint=host:port", u.Redacted())
	}
	if err := lockParams(u, &opts, "endpoint", "region", "tls", "ca_file"); err != nil {
		return S3Config{}, err
	}
	q := u.Query()
	cfg := S3Config{
		Endpoint:    q.Get("endpoint"),
		Bucket:      u.Host,
		Prefix:      strings.Trim(u.Path, "/"),
		Region:      q.Get("region"),
		CAFile:      q.Get("ca_file"),
		Mode:        opts.Mode,
		Retention:   opts.Retention,
		Credentials: opts.Credentials,
		Now:         opts.Now,
		Logger:      opts.Logger,
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "s3.amazonaws.com"
	}
	if v := q.Get("tls"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return S3Config{}, fmt.Errorf("store URL %s: tls=%s: want true or false", u.Redacted(), v)
		}
		cfg.Insecure = !on
	}
	if cfg.Insecure && cfg.CAFile != "" {
		return S3Config{}, fmt.Errorf("store URL %s: ca_file is set but tls=false: drop one of them", u.Redacted())
	}
	return cfg, nil
}

func openS3URL(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	cfg, err := s3Config(u, opts)
	if err != nil {
		return nil, err
	}
	s, err := NewS3Store(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
