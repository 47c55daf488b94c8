package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/internal/testenv"
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
)

// TestArchiveChainOnStores writes a chain of segments into a file store and
// an S3 Object Lock bucket on real MinIO, then rebuilds the chain from each
// store's listing alone: names parse, headers match names, links verify,
// every transaction decodes, and the objects are locked.
func TestArchiveChainOnStores(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{TLS: true})
	m.MakeBucket(t, "archive", true)
	q := url.Values{"endpoint": {m.Endpoint}, "ca_file": {m.CAFile}, "lock": {"compliance"}, "retention": {"1h"}}
	opts := store.Options{Credentials: store.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}, Retention: time.Hour}
	stores := map[string]string{
		"file": "file://" + t.TempDir() + "?lock=compliance&retention=1h",
		"s3":   "s3://archive/pharmacy-1/wal?" + q.Encode(),
	}
	id, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	escrow, err := keys.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for kind, raw := range stores {
		t.Run(kind, func(t *testing.T) {
			s, err := store.Open(ctx, raw, opts)
			if err != nil {
				t.Fatal(err)
			}
			written := writeChain(t, ctx, s, 6, id.Recipient(), escrow.Recipient())
			checkChain(t, ctx, s, written, escrow)

			// Write-once: the same segment name again is refused and
			// changes nothing.
			var first string
			for name := range written {
				if first == "" || name < first {
					first = name
				}
			}
			before := readObject(t, ctx, s, first)
			if err := s.Put(ctx, first, bytes.NewReader([]byte("forged")), 6); !errors.Is(err, store.ErrExists) {
				t.Errorf("overwrite of %s: err %v, want ErrExists", first, err)
			}
			if err := s.Delete(ctx, first); !errors.Is(err, store.ErrLocked) {
				t.Errorf("delete of locked %s: err %v, want ErrLocked", first, err)
			}
			if after := readObject(t, ctx, s, first); !bytes.Equal(before, after) {
				t.Errorf("%s changed after refused overwrite and delete", first)
			}
		})
	}
}

// writeChain stores n segments of corpus transactions as one chain and
// returns the transactions by object name.
func writeChain(t *testing.T, ctx context.Context, s store.Store, n int, recips ...*keys.Recipient) map[string][]segment.Txn {
	t.Helper()
	c := segtest.NewCorpus(77)
	chain := segment.ChainID{0x42, 1, 2, 3}
	prev := segment.Digest{}
	out := make(map[string][]segment.Txn)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		txns := c.Txns(50 + int(seq)*10)
		h, err := segtest.Header(chain, seq, prev, txns)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := segment.NewWriter(&buf, h, recips)
		if err != nil {
			t.Fatal(err)
		}
		for i := range txns {
			if err := w.WriteTxn(&txns[i]); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		name := "seg/" + h.Info().ObjectName()
		if err := s.Put(ctx, name, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
		out[name] = txns
		prev = sum.Digest
	}
	return out
}

// checkChain lists the store, walks the chain in name order and checks
// every link and every transaction.
func checkChain(t *testing.T, ctx context.Context, s store.Store, written map[string][]segment.Txn, id *keys.Identity) {
	t.Helper()
	var names []string
	opts := store.ListOptions{Prefix: "seg/", Limit: 2} // small pages: exercise paging
	for {
		page, err := s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			names = append(names, o.Name)
		}
		if page.Next == "" {
			break
		}
		opts.StartAfter = page.Next
	}
	if got, want := len(names), len(written); got != want {
		t.Fatalf("listed %d segments, wrote %d", got, want)
	}
	var prevHdr *segment.Header
	var prevDigest segment.Digest
	for i, name := range names {
		info, err := segment.ParseObjectName(strings.TrimPrefix(name, "seg/"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := info.Seq, uint64(i+1); got != want {
			t.Fatalf("listing order: %s has seq %d at position %d", name, got, i)
		}
		data := readObject(t, ctx, s, name)
		// Without a key: structure and digest.
		h, sum, err := segment.Verify(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("verify %s: %v", name, err)
		}
		if h.Info() != info {
			t.Fatalf("%s: header %+v does not match its name", name, h.Info())
		}
		if prevHdr != nil {
			if err := segment.CheckLink(prevHdr, prevDigest, &h); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		// With the escrow identity: every transaction.
		r, err := segment.NewReader(bytes.NewReader(data), []*keys.Identity{id})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		for {
			txn, err := r.ReadTxn()
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := written[name][got]
			if txn.Pos != want.Pos || len(txn.Changes) != len(want.Changes) {
				t.Fatalf("%s txn %d: got pos %s with %d changes, want %s with %d", name, got, txn.Pos, len(txn.Changes), want.Pos, len(want.Changes))
			}
			got++
		}
		r.Close()
		if got != len(written[name]) {
			t.Fatalf("%s: read %d txns, wrote %d", name, got, len(written[name]))
		}
		ret, err := s.Retention(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ret.Mode != store.LockCompliance || !ret.Locked(time.Now()) {
			t.Errorf("%s: retention %+v, want locked in compliance mode", name, ret)
		}
		prevHdr, prevDigest = &h, sum.Digest
	}
}

func readObject(t *testing.T, ctx context.Context, s store.Store, name string) []byte {
	t.Helper()
	rc, err := s.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
