package store

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{"a", "a/b/c", "seg/0000000000000001-0000000000000002.seg", "A_z-0.9", strings.Repeat("x", MaxNameLen)} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "/", "a/", "/a", "a//b", ".", "..", ".a", "a/.b", "a/..", "a b", "a+b", "ü", strings.Repeat("x", MaxNameLen+1)} {
		if err := ValidName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestCeilSecond(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 7, 0, time.UTC)
	for _, tc := range []struct{ in, want time.Time }{
		{base, base},
		{base.Add(time.Nanosecond), base.Add(time.Second)},
		{base.Add(999 * time.Millisecond), base.Add(time.Second)},
	} {
		if got := ceilSecond(tc.in); !got.Equal(tc.want) {
			t.Errorf("ceilSecond(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestExactReader(t *testing.T) {
	for _, tc := range []struct {
		body    string
		size    int64
		want    string
		sizeErr bool
	}{
		{"hello", 5, "hello", false},
		{"", 0, "", false},
		{"hello", 3, "", true}, // too long: the last chunk is held back
		{"hello", 0, "", true},
		{"hi", 5, "", true}, // too short
	} {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r },
			iotest.OneByteReader,
			iotest.DataErrReader,
		} {
			er := newExactReader(wrap(strings.NewReader(tc.body)), tc.size)
			got, err := io.ReadAll(er)
			if tc.sizeErr {
				if !errors.Is(err, errBodySize) || er.sizeError() == nil {
					t.Errorf("body %q size %d: err = %v, want a size error", tc.body, tc.size, err)
				}
				if int64(len(got)) >= tc.size && tc.size > 0 && len(tc.body) > int(tc.size) {
					t.Errorf("body %q size %d: delivered all %d bytes before failing", tc.body, tc.size, len(got))
				}
				continue
			}
			if err != nil || !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("body %q size %d: got %q, %v; want %q", tc.body, tc.size, got, err, tc.want)
			}
		}
	}
}

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for range 50 {
			if got := p.delay(n); got < want/2 || got > want {
				t.Errorf("delay(%d) = %s, want within [%s, %s]", n, got, want/2, want)
			}
		}
	}
}

func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{Transient(errors.New("503")), true},
		{Transient(ErrNotExist), false},
		{Permanent(Transient(errors.New("x"))), false},
		{Transient(io.ErrUnexpectedEOF), true},
		{Transient(errBodySize), false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
