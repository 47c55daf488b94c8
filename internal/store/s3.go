package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Config configures an S3Store.
type S3Config struct {
	Endpoint    string           // host:port of the S3 API
	Bucket      string           // bucket name
	Prefix      string           // key prefix, a valid name or ""; objects are <Prefix>/<name>
	Region      string           // "" lets the client discover it
	Insecure    bool             // plain HTTP; refused unless Endpoint is a loopback address
	CAFile      string           // PEM CA certificates to trust instead of the system's
	Mode        LockMode         // Object Lock mode given to new objects
	Retention   time.Duration    // retain-until of new objects is now plus this
	Credentials Credentials      // static credentials
	Now         func() time.Time // clock for retain-until dates; nil means time.Now
	Logger      *slog.Logger     // tagged component=internal/store; nil discards
}

// S3Store is a store in an S3 bucket, with S3 Object Lock giving the
// write-once guarantee even against the bucket's own administrators (in
// COMPLIANCE mode).
//
// Put is one PUT request (never multipart) with If-None-Match: *, so the
// server refuses to replace an existing object (412 → ErrExists), and
// carries the Object Lock mode and retain-until date of the store. Delete
// removes the object's current version by its version id, so Object Lock
// refuses it while retained (a plain DELETE on a versioned bucket would
// only add a delete marker and "succeed"). Retention and legal hold use the
// S3 Object Lock API; retention is never shortened and governance is never
// bypassed.
//
// minio-go's own retries are turned off (MaxRetries 1): WithRetry is the
// one retry layer, so that a Put whose first attempt may have landed is
// resolved by comparing content rather than by a blind repeat.
type S3Store struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string
	mode     LockMode
	keep     time.Duration // retention of new objects
	hasLock  bool          // the bucket has Object Lock enabled
	now      func() time.Time
	log      *slog.Logger
}

// NewS3Store connects to the bucket and checks it: it must exist, and when
// cfg.Mode is not LockNone it must have Object Lock enabled.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	if cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "" {
		return nil, errors.New("s3 store: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	tr, err := minio.DefaultTransport(!cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3 store: transport: %w", err)
	}
	if !cfg.Insecure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("s3 store: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("s3 store: ca_file %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	c := cfg.Credentials
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:           credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Secure:          !cfg.Insecure,
		Transport:       tr,
		Region:          cfg.Region,
		MaxRetries:      1, // WithRetry retries; see S3Store
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	s := &S3Store{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   prefix,
		endpoint: cfg.Endpoint,
		mode:     cfg.Mode,
		keep:     cfg.Retention,
		now:      cfg.Now,
		log:      scoped(cfg.Logger),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// validate checks what can be checked without I/O.
func (cfg *S3Config) validate() error {
	if err := checkLock(cfg.Mode, cfg.Retention); err != nil {
		return fmt.Errorf("s3 store: %w", err)
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return fmt.Errorf("s3 store: bucket %q: %w", cfg.Bucket, err)
	}
	if prefix := strings.Trim(cfg.Prefix, "/"); prefix != "" {
		if err := ValidName(prefix); err != nil {
			return fmt.Errorf("s3 store: prefix: %w", err)
		}
	}
	if cfg.Endpoint == "" {
		return errors.New("s3 store: no endpoint")
	}
	if cfg.Insecure && !loopback(cfg.Endpoint) {
		return fmt.Errorf("s3 store: tls=false is allowed only for a loopback endpoint, not %s: remove tls=false (and set ca_file= for a private CA)", cfg.Endpoint)
	}
	return nil
}

// checkBucket checks that the bucket exists and has Object Lock when the
// store's mode needs it.
func (s *S3Store) checkBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3 store %s: %w", s, s.classify(err))
	}
	if !ok {
		return fmt.Errorf("s3 store %s: bucket %q does not exist: create it with object locking enabled", s, s.bucket)
	}
	status, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.bucket)
	switch {
	case err == nil:
		s.hasLock = status == "Enabled"
	case s3Code(err) == "ObjectLockConfigurationNotFoundError":
		s.hasLock = false
	default:
		return fmt.Errorf("s3 store %s: object lock configuration: %w", s, s.classify(err))
	}
	if s.mode != LockNone && !s.hasLock {
		return fmt.Errorf("s3 store %s: bucket %q has no Object Lock configuration but lock=%s was asked: create the bucket with object locking enabled, or set lock=none", s, s.bucket, s.mode)
	}
	return nil
}

// loopback reports whether host:port names a loopback address.
func loopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		host = endpoint
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String returns the store's URL, without credentials.
func (s *S3Store) String() string {
	return s3Name(s.bucket, strings.TrimSuffix(s.prefix, "/"), s.endpoint)
}

// s3Name is the String of an S3 store.
func s3Name(bucket, prefix, endpoint string) string {
	return "s3://" + bucket + "/" + prefix + "?endpoint=" + endpoint
}

func (s *S3Store) key(name string) string { return s.prefix + name }

func minioMode(m LockMode) minio.RetentionMode {
	if m == LockGovernance {
		return minio.Governance
	}
	return minio.Compliance
}

func fromMinioMode(m minio.RetentionMode) (LockMode, error) {
	switch m {
	case minio.Governance:
		return LockGovernance, nil
	case minio.Compliance:
		return LockCompliance, nil
	default:
		return "", fmt.Errorf("unknown object lock mode %q", m)
	}
}

// Put implements Store.
func (s *S3Store) Put(ctx context.Context, name string, body io.ReadSeeker, size int64) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d: %w", name, size, errBodySize)
	}
	opts := minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		DisableMultipart: true, // one request, so If-None-Match guards the whole write
	}
	if s.mode != LockNone {
		opts.Mode = minioMode(s.mode)
		opts.RetainUntilDate = retainUntil(s.now(), s.keep)
	}
	opts.SetMatchETagExcept("*") // If-None-Match: *
	er := newExactReader(body, size)
	if size == 0 {
		// minio-go does not read the body of an empty object; check it.
		if _, err := er.Read(nil); !errors.Is(err, io.EOF) {
			return fmt.Errorf("put %s: %w", name, err)
		}
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.key(name), er, size, opts)
	if err != nil {
		if serr := er.sizeError(); serr != nil {
			return fmt.Errorf("put %s: %w", name, serr)
		}
		return fmt.Errorf("put %s: %w", name, s.classify(err))
	}
	return nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, s.classify(err))
	}
	// GetObject is lazy: Stat sends the request, so a missing object is
	// reported here rather than at the first Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, fmt.Errorf("get %s: %w", name, s.classify(err))
	}
	return obj, nil
}

// stat returns the object's info and current version id.
func (s *S3Store) stat(ctx context.Context, op, name string) (minio.ObjectInfo, error) {
	if err := ValidName(name); err != nil {
		return minio.ObjectInfo{}, fmt.Errorf("%s: %w", op, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil {
		return minio.ObjectInfo{}, fmt.Errorf("%s %s: %w", op, name, s.classify(err))
	}
	return info, nil
}

// Stat implements Store.
func (s *S3Store) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	info, err := s.stat(ctx, "stat", name)
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Name: name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List implements Store. Keys under the prefix that are not valid names
// are skipped.
func (s *S3Store) List(ctx context.Context, opts ListOptions) (Page, error) {
	if err := validPrefix(opts.Prefix); err != nil {
		return Page{}, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPage
	}
	lo := minio.ListObjectsOptions{
		Prefix:    s.prefix + opts.Prefix,
		Recursive: true,
		MaxKeys:   min(limit+1, 1000),
	}
	if opts.StartAfter != "" {
		lo.StartAfter = s.prefix + opts.StartAfter
	}
	var out []ObjectInfo
	for o := range s.client.ListObjectsIter(ctx, s.bucket, lo) {
		if o.Err != nil {
			return Page{}, fmt.Errorf("list %s: %w", opts.Prefix, s.classify(o.Err))
		}
		name, ok := strings.CutPrefix(o.Key, s.prefix)
		if !ok || ValidName(name) != nil || name <= opts.StartAfter {
			continue
		}
		out = append(out, ObjectInfo{Name: name, Size: o.Size, ModTime: o.LastModified})
		if len(out) > limit {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return Page{}, fmt.Errorf("list %s: %w", opts.Prefix, err)
	}
	if len(out) > limit {
		return Page{Objects: out[:limit], Next: out[limit-1].Name}, nil
	}
	return Page{Objects: out}, nil
}
