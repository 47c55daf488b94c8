package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
)

// s3Code returns the S3 error code of err, or "".
func s3Code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// refused reports whether the server answered with a 4xx refusal that
// Object Lock could have caused (400 or 403).
func refused(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.StatusCode == http.StatusBadRequest || er.StatusCode == http.StatusForbidden)
}

// classify maps an error from minio-go to the store's errors: 404 to
// ErrNotExist, 412 to ErrExists, 5xx, 408, 429, throttling codes,
// conditional-write conflicts and network failures to Transient, TLS
// verification failures and every other answer to Permanent.
func (s *S3Store) classify(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		switch code := er.StatusCode; {
		case code == http.StatusNotFound && er.Code != "NoSuchBucket":
			return errors.Join(ErrNotExist, err)
		case code == http.StatusPreconditionFailed:
			return errors.Join(ErrExists, err)
		case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests,
			er.Code == "SlowDown", er.Code == "RequestTimeout", er.Code == "ConditionalRequestConflict":
			return Transient(err)
		default:
			return Permanent(err)
		}
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		recordHdr  tls.RecordHeaderError
		certVerify *tls.CertificateVerificationError
		alertErr   tls.AlertError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &recordHdr), errors.As(err, &certVerify), errors.As(err, &alertErr):
		return Permanent(err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return Permanent(fmt.Errorf("%w (the endpoint speaks plain HTTP: use tls=false only for loopback tests)", err))
	}
	return Transient(err)
}
