package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// DefaultPath is the configuration file read when --config is not given.
const DefaultPath = "rxvault.yaml"

// EnvPrefix starts every environment override: RXVAULT_<SECTION>_<KEY>.
const EnvPrefix = "RXVAULT_"

// Sources says where configuration comes from, in rising precedence.
type Sources struct {
	// Path is the YAML file. If Explicit, a missing file is an error;
	// otherwise a missing file means defaults only.
	Path     string
	Explicit bool
	// Env is the environment as KEY=VALUE pairs (os.Environ()).
	Env []string
	// Set are section.key=value overrides, from --set flags.
	Set []string
}

// field is one configuration key and where its value lives.
type field struct {
	key string        // section.key
	ptr reflect.Value // addressable field in a Config
}

// fields lists every key of cfg in declaration order.
func fields(cfg *Config) []field {
	var out []field
	root := reflect.ValueOf(cfg).Elem()
	for i := range root.NumField() {
		sec := root.Field(i)
		secName := root.Type().Field(i).Tag.Get("mapstructure")
		for j := range sec.NumField() {
			out = append(out, field{key: secName + "." + sec.Type().Field(j).Tag.Get("mapstructure"), ptr: sec.Field(j)})
		}
	}
	return out
}

// KeyNames returns every configuration key, as section.key.
func KeyNames() []string {
	var cfg Config
	var keys []string
	for _, f := range fields(&cfg) {
		keys = append(keys, f.key)
	}
	return keys
}

// EnvName returns the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Load builds the configuration from defaults, the file, the environment
// and --set overrides, then validates it. Errors are one line and name the
// key, its value and the fix; a *ValidationError for bad values.
func Load(src Sources) (Config, error) {
	cfg := Default()
	fs := fields(&cfg)
	known := make(map[string]bool, len(fs))
	for _, f := range fs {
		known[f.key] = true
	}

	v := viper.New()
	if err := readFile(v, src, known); err != nil {
		return Config{}, err
	}
	env := make(map[string]string)
	for _, kv := range src.Env {
		if k, val, ok := strings.Cut(kv, "="); ok {
			env[k] = val
		}
	}
	for _, f := range fs {
		if val, ok := env[EnvName(f.key)]; ok {
			v.Set(f.key, val)
		}
	}
	for _, s := range src.Set {
		k, val, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return Config{}, fmt.Errorf("--set %q: want section.key=value, for example --set segment.interval=2s", s)
		}
		if !known[k] {
			return Config{}, fmt.Errorf("--set %s: unknown key; known keys: %s", k, strings.Join(KeyNames(), ", "))
		}
		v.Set(k, val)
	}

	for _, f := range fs {
		if !v.IsSet(f.key) {
			continue
		}
		raw := v.Get(f.key)
		if err := decode(raw, f.ptr.Addr().Interface()); err != nil {
			return Config{}, &ValidationError{Key: f.key, Value: fmt.Sprint(raw), Problem: err.Error(), Fix: fixFor(f.key)}
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// readFile merges the YAML file into v, refusing keys rxvault does not know
// (a misspelt key must not silently fall back to its default).
func readFile(v *viper.Viper, src Sources, known map[string]bool) error {
	if src.Path == "" {
		return nil
	}
	if _, err := os.Stat(src.Path); errors.Is(err, os.ErrNotExist) && !src.Explicit {
		return nil
	}
	fv := viper.New()
	fv.SetConfigFile(src.Path)
	fv.SetConfigType("yaml")
	if err := fv.ReadInConfig(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("config file %s does not exist: create one with 'rxvault init' or pass --config", src.Path)
		}
		return fmt.Errorf("config file %s: %s: fix the YAML syntax", src.Path, oneLine(err.Error()))
	}
	var unknown []string
	for _, k := range fv.AllKeys() {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown key %s: check its spelling (rxvault init writes every key, commented)", src.Path, strings.Join(unknown, ", "))
	}
	return v.MergeConfigMap(fv.AllSettings())
}

// decode converts a raw value (from YAML, the environment or a flag) into
// the field at ptr.
func decode(raw, ptr any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			byteSizeHook,
			stringToSlice,
		),
		Result: ptr,
	})
	if err != nil {
		return err
	}
	if err := d.Decode(raw); err != nil {
		// mapstructure prefixes errors with a description of the
		// target; keep the cause.
		msg := oneLine(err.Error())
		if i := strings.LastIndex(msg, "'' "); i >= 0 {
			msg = msg[i+len("'' "):]
		}
		return errors.New(msg)
	}
	return nil
}

// stringToSlice splits comma-separated strings (environment and flag
// values) into lists, trimming blanks.
func stringToSlice(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	s := strings.TrimSpace(data.(string))
	if s == "" {
		return []string{}, nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

func byteSizeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(ByteSize(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		n, err := humanize.ParseBytes(v)
		if err != nil {
			return nil, fmt.Errorf("not a size (use bytes or a unit: 64MiB, 512KB)")
		}
		return ByteSize(n), nil
	case int:
		return ByteSize(v), nil
	case int64:
		return ByteSize(v), nil
	case float64:
		return ByteSize(v), nil
	}
	return data, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// secretKey reports keys whose values must never be shown.
func secretKey(key string) bool {
	return key == "monitor.token" || key == "monitor.webhook_secret"
}

// Effective returns every key of cfg with its value as text, in declaration
// order, with URL passwords and secret parameters masked.
func Effective(cfg *Config) [][2]string {
	var out [][2]string
	for _, f := range fields(cfg) {
		var s string
		switch v := f.ptr.Interface().(type) {
		case []string:
			r := make([]string, len(v))
			for i, x := range v {
				r[i] = RedactURL(x)
				if strings.HasPrefix(x, "rxvault-pub-v1:") {
					r[i] = abbreviate(x)
				}
			}
			s = "[" + strings.Join(r, ", ") + "]"
		case string:
			s = v
			switch {
			case secretKey(f.key) && v != "":
				s = "(set)"
			case strings.Contains(v, "://"):
				s = RedactURL(v)
			}
		case time.Duration:
			s = durationText(v)
		case ByteSize:
			s = humanize.IBytes(uint64(v))
		default:
			s = fmt.Sprint(v)
		}
		out = append(out, [2]string{f.key, s})
	}
	return out
}
