package store

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
)

// lockState reads the lock state of one version of key.
func (s *S3Store) lockState(ctx context.Context, name, version string) (Retention, error) {
	if !s.hasLock {
		return Retention{Mode: LockNone}, nil
	}
	var r Retention
	mode, until, err := s.client.GetObjectRetention(ctx, s.bucket, s.key(name), version)
	switch {
	case err == nil && mode != nil && *mode != "":
		if r.Mode, err = fromMinioMode(*mode); err != nil {
			return Retention{}, fmt.Errorf("retention %s: %w", name, err)
		}
		if until == nil || until.IsZero() {
			return Retention{}, fmt.Errorf("retention %s: mode %s without a retain-until date", name, r.Mode)
		}
		r.RetainUntil = until.UTC()
	case err == nil || s3Code(err) == "NoSuchObjectLockConfiguration":
		r.Mode = LockNone
	default:
		return Retention{}, fmt.Errorf("retention %s: %w", name, s.classify(err))
	}
	hold, err := s.client.GetObjectLegalHold(ctx, s.bucket, s.key(name), minio.GetObjectLegalHoldOptions{VersionID: version})
	switch {
	case err == nil:
		r.LegalHold = hold != nil && *hold == minio.LegalHoldEnabled
	case s3Code(err) == "NoSuchObjectLockConfiguration":
	default:
		return Retention{}, fmt.Errorf("legal hold %s: %w", name, s.classify(err))
	}
	return r, nil
}

// Retention implements Store.
func (s *S3Store) Retention(ctx context.Context, name string) (Retention, error) {
	info, err := s.stat(ctx, "retention", name)
	if err != nil {
		return Retention{}, err
	}
	return s.lockState(ctx, name, info.VersionID)
}

// SetRetention implements Store. until is rounded up to a whole second.
// Shortening is refused here before the server is asked, and a refusal by
// the server of a date earlier than the current one maps to
// ErrRetentionShortened too.
func (s *S3Store) SetRetention(ctx context.Context, name string, until time.Time) error {
	until = ceilSecond(until)
	info, err := s.stat(ctx, "set retention", name)
	if err != nil {
		return err
	}
	cur, err := s.lockState(ctx, name, info.VersionID)
	if err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	if cur.Mode != LockNone && until.Before(cur.RetainUntil) {
		return fmt.Errorf("set retention %s to %s, before %s: %w", name,
			until.Format(time.RFC3339), cur.RetainUntil.Format(time.RFC3339), ErrRetentionShortened)
	}
	mode := cur.Mode
	if mode == LockNone {
		if s.mode == LockNone {
			return fmt.Errorf("set retention %s: the store's lock mode is none; configure governance or compliance", name)
		}
		mode = s.mode
	}
	mm := minioMode(mode)
	err = s.client.PutObjectRetention(ctx, s.bucket, s.key(name), minio.PutObjectRetentionOptions{
		Mode: &mm, RetainUntilDate: &until, VersionID: info.VersionID,
	})
	if err != nil {
		if refused(err) {
			if now, rerr := s.lockState(ctx, name, info.VersionID); rerr == nil && now.Mode != LockNone && until.Before(now.RetainUntil) {
				return fmt.Errorf("set retention %s: %w: %w", name, ErrRetentionShortened, err)
			}
		}
		return fmt.Errorf("set retention %s: %w", name, s.classify(err))
	}
	return nil
}

// SetLegalHold implements Store.
func (s *S3Store) SetLegalHold(ctx context.Context, name string, on bool) error {
	info, err := s.stat(ctx, "set legal hold", name)
	if err != nil {
		return err
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	err = s.client.PutObjectLegalHold(ctx, s.bucket, s.key(name), minio.PutObjectLegalHoldOptions{
		VersionID: info.VersionID, Status: &status,
	})
	if err != nil {
		return fmt.Errorf("set legal hold %s: %w", name, s.classify(err))
	}
	return nil
}

// Delete implements Store. It deletes the current version by id, so that
// Object Lock can refuse it; a refusal of an object that is retained or
// held maps to ErrLocked, whatever status the server chose (MinIO answers
// 400 InvalidRequest, AWS 403 AccessDenied).
func (s *S3Store) Delete(ctx context.Context, name string) error {
	info, err := s.stat(ctx, "delete", name)
	if err != nil {
		return err
	}
	err = s.client.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{VersionID: info.VersionID})
	if err == nil {
		return nil
	}
	if refused(err) {
		if r, rerr := s.lockState(ctx, name, info.VersionID); rerr == nil && r.Locked(s.now()) {
			return fmt.Errorf("delete %s (%s until %s, legal hold %v): %w: %w", name, r.Mode,
				r.RetainUntil.Format(time.RFC3339), r.LegalHold, ErrLocked, err)
		}
	}
	return fmt.Errorf("delete %s: %w", name, s.classify(err))
}
