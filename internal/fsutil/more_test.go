package fsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rxvault/rxvault/internal/fsutil"
)

func TestMkdirAllSync(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "c")
	for range 2 { // the second call finds it made
		if err := fsutil.MkdirAllSync(dir, 0o750); err != nil {
			t.Fatalf("MkdirAllSync: %v", err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.Fatalf("Stat(%s) = %v, %v; want a directory", dir, st, err)
	}
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, filepath.Join(file, "sub")} {
		err := fsutil.MkdirAllSync(p, 0o750)
		if !fsutil.IsNotDir(err) {
			t.Errorf("MkdirAllSync(%s) = %v, want a not-a-directory error", p, err)
		}
	}
}

func TestWriteFileAtomicIn(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "data", "f.json")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"one", "two"} { // replaces
		if err := fsutil.WriteFileAtomicIn(tmp, path, []byte(content), 0o640); err != nil {
			t.Fatalf("WriteFileAtomicIn: %v", err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Errorf("content = %q, %v; want %q", b, err, content)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o640); got != want {
		t.Errorf("mode = %v, want %v", got, want)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}
