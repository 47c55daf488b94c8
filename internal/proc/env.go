package proc

import "strings"

// Getenv returns the value of key in env (KEY=VALUE pairs, as
// os.Environ gives them; the last one wins), or "". Packages below cmd
// read the environment only through the env their configuration carries.
func Getenv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
