package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/internal/store/storetest"
	"github.com/rxvault/rxvault/internal/testenv"
)

// bucketSeq names buckets uniquely within the test binary.
var bucketSeq atomic.Int64

func newBucket(t *testing.T, m *testenv.MinIO, lock bool) string {
	t.Helper()
	name := fmt.Sprintf("rx-%d", bucketSeq.Add(1))
	m.MakeBucket(t, name, lock)
	return name
}

// s3URL builds an s3:// URL for bucket on m.
func s3URL(m *testenv.MinIO, bucket, prefix string, mode store.LockMode, retention time.Duration) string {
	q := url.Values{}
	q.Set("endpoint", m.Endpoint)
	q.Set("lock", string(mode))
	if retention > 0 {
		q.Set("retention", retention.String())
	}
	if m.TLS {
		q.Set("ca_file", m.CAFile)
	} else {
		q.Set("tls", "false")
	}
	return "s3://" + bucket + "/" + prefix + "?" + q.Encode()
}

func s3Options(m *testenv.MinIO) store.Options {
	return store.Options{
		Credentials: store.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey},
		Retry:       fastRetry,
	}
}

func openS3(t *testing.T, m *testenv.MinIO, rawURL string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), rawURL, s3Options(m))
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	return s
}

// TestS3Conformance runs the suite on a real MinIO: Object Lock buckets for
// compliance and governance, a plain unversioned bucket for lock none.
// Every other store has a key prefix.
func TestS3Conformance(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	storetest.Run(t, func(t *testing.T, mode store.LockMode, retention time.Duration) store.Store {
		bucket := newBucket(t, m, mode != store.LockNone)
		prefix := ""
		if bucketSeq.Load()%2 == 0 {
			prefix = "archive/v1"
		}
		return openS3(t, m, s3URL(m, bucket, prefix, mode, retention))
	})
}

func TestS3BucketWithoutObjectLockRefused(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	bucket := newBucket(t, m, false)
	for _, mode := range []store.LockMode{store.LockCompliance, store.LockGovernance} {
		_, err := store.Open(t.Context(), s3URL(m, bucket, "", mode, time.Hour), s3Options(m))
		if err == nil {
			t.Fatalf("Open with lock=%s on a bucket without Object Lock succeeded", mode)
		}
		msg := err.Error()
		for _, want := range []string{bucket, "Object Lock", "lock=none"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("error is not one line: %q", msg)
		}
	}
	// lock=none is accepted on the same bucket.
	openS3(t, m, s3URL(m, bucket, "", store.LockNone, 0))
}

func TestS3MissingBucketRefused(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	_, err := store.Open(t.Context(), s3URL(m, "no-such-bucket", "", store.LockCompliance, time.Hour), s3Options(m))
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket = %v, want an error naming it", err)
	}
}

func TestS3TLSWithCAFile(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	bucket := newBucket(t, m, true)
	s := openS3(t, m, s3URL(m, bucket, "tls", store.LockCompliance, time.Hour))
	data := []byte("over TLS")
	putBytes(t, s, "obj", data)
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(data) {
		t.Errorf("content = %q, want %q", got, data)
	}
	if err := s.Delete(t.Context(), "obj"); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Delete = %v, want ErrLocked", err)
	}
	// Over TLS the PUT is signed differently (unsigned payload with a
	// trailing checksum): check that the condition and the size checks
	// still hold.
	if err := s.Put(t.Context(), "obj", bytes.NewReader([]byte("other")), 5); !errors.Is(err, store.ErrExists) {
		t.Errorf("overwrite over TLS = %v, want ErrExists", err)
	}
	for i, size := range []int64{3, 20} {
		name := fmt.Sprintf("badsize-%d", i)
		if err := s.Put(t.Context(), name, bytes.NewReader([]byte("0123456789")), size); err == nil {
			t.Errorf("Put of 10 bytes with size %d over TLS succeeded", size)
		}
		if _, err := s.Stat(t.Context(), name); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat(%s) = %v, want ErrNotExist", name, err)
		}
	}
	rc2, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if got, _ := io.ReadAll(rc2); string(got) != string(data) {
		t.Errorf("content after refused overwrite = %q, want %q", got, data)
	}

	// Without the CA file the server's certificate is not trusted: a
	// permanent error, reported without retrying.
	noCA := strings.Replace(s3URL(m, bucket, "tls", store.LockCompliance, time.Hour), "ca_file=", "x=", 1)
	noCA = strings.Replace(noCA, "&x="+url.QueryEscape(m.CAFile), "", 1)
	_, err = store.Open(t.Context(), noCA, s3Options(m))
	if err == nil {
		t.Fatalf("Open without the CA file succeeded")
	}
	if store.IsTransient(err) {
		t.Errorf("certificate error %v is transient, want permanent", err)
	}
	// Plain HTTP to a TLS server is refused too.
	_, err = store.Open(t.Context(), "s3://"+bucket+"?tls=false&lock=none&endpoint="+m.Endpoint, s3Options(m))
	if err == nil {
		t.Errorf("Open with tls=false against a TLS server succeeded")
	}
}

func TestS3InsecureOnlyOnLoopback(t *testing.T) {
	// Refused before any connection is made.
	for _, ep := range []string{"s3.invalid:9000", "10.0.0.1:9000", "example.com"} {
		u := "s3://bucket?lock=none&tls=false&endpoint=" + ep
		_, err := store.Open(t.Context(), u, store.Options{
			Credentials: store.Credentials{AccessKeyID: "a", SecretAccessKey: "b"},
		})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Open(%s) = %v, want a loopback-only error", u, err)
		}
	}
}

// TestS3ServerEnforcesLock checks with a raw client that objects written by
// the store carry Object Lock retention, and that MinIO itself refuses to
// delete their version or shorten their COMPLIANCE retention: the guarantee
// does not rest on our own checks.
func TestS3ServerEnforcesLock(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	bucket := newBucket(t, m, true)
	s := openS3(t, m, s3URL(m, bucket, "p", store.LockCompliance, time.Hour))
	before := time.Now()
	putBytes(t, s, "obj", []byte("x"))
	c, err := m.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	info, err := c.StatObject(ctx, bucket, "p/obj", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mode, until, err := c.GetObjectRetention(ctx, bucket, "p/obj", info.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if mode == nil || *mode != minio.Compliance {
		t.Errorf("server-side mode = %v, want COMPLIANCE", mode)
	}
	if until == nil || until.Before(before.Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("server-side retain-until = %v, want about an hour from now", until)
	}
	err = c.RemoveObject(ctx, bucket, "p/obj", minio.RemoveObjectOptions{VersionID: info.VersionID})
	if err == nil {
		t.Fatalf("server deleted a locked version")
	}
	if _, err := s.Stat(ctx, "obj"); err != nil {
		t.Errorf("object gone after refused delete: %v", err)
	}
	// COMPLIANCE retention cannot be shortened, by anyone.
	shorter := time.Now().Add(time.Minute).Truncate(time.Second)
	compliance := minio.Compliance
	err = c.PutObjectRetention(ctx, bucket, "p/obj", minio.PutObjectRetentionOptions{
		Mode:            &compliance,
		RetainUntilDate: &shorter,
		VersionID:       info.VersionID,
	})
	if err == nil {
		t.Errorf("server shortened a COMPLIANCE retention to %v", shorter)
	}
	mode2, until2, err := c.GetObjectRetention(ctx, bucket, "p/obj", info.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if mode2 == nil || *mode2 != minio.Compliance {
		t.Errorf("mode after refused shortening = %v, want COMPLIANCE", mode2)
	}
	if until == nil || until2 == nil || !until2.Equal(*until) {
		t.Errorf("retain-until after refused shortening = %v, want %v", until2, until)
	}
}

// TestS3Outage stops MinIO under the store: calls fail with a transient
// error once retries are used up, and work again after a restart.
func TestS3Outage(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.MinIOOptions{})
	bucket := newBucket(t, m, true)
	s := openS3(t, m, s3URL(m, bucket, "", store.LockGovernance, time.Hour))
	putBytes(t, s, "before", []byte("b"))
	m.Stop(t)
	err := s.Put(t.Context(), "during", bytes.NewReader([]byte("d")), 1)
	if err == nil {
		t.Fatalf("Put with MinIO stopped succeeded")
	}
	if !store.IsTransient(err) {
		t.Errorf("Put during outage = %v, want a transient error", err)
	}
	m.Start(t)
	putBytes(t, s, "during", []byte("d"))
	if _, err := s.Stat(t.Context(), "before"); err != nil {
		t.Errorf("Stat(before) after restart: %v", err)
	}
}
