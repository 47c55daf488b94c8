package randmy

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// value returns an SQL literal (never NULL) for column c of t, valid under
// the session's sql_mode and time zone.
func (g *Gen) value(t *table, c *column) string {
	r := g.rnd
	ct := c.t
	switch ct.base {
	case "tinyint", "smallint", "mediumint", "int", "bigint":
		bits := uint(ct.n * 8)
		if ct.unsigned {
			maxU := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits), big.NewInt(1))
			switch r.IntN(5) {
			case 0:
				return maxU.String()
			case 1:
				return "0"
			}
			return new(big.Int).Rsh(new(big.Int).SetUint64(r.Uint64()), 64-bits).String()
		}
		maxS := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits-1), big.NewInt(1))
		switch r.IntN(6) {
		case 0:
			return maxS.String()
		case 1:
			return new(big.Int).Neg(new(big.Int).Add(maxS, big.NewInt(1))).String()
		case 2:
			return strconv.Itoa(r.IntN(3) - 1)
		}
		v := new(big.Int).Rsh(new(big.Int).SetUint64(r.Uint64()), 64-bits)
		return v.Sub(v, new(big.Int).Add(maxS, big.NewInt(1))).String()
	case "decimal":
		ip, fp := ct.n-ct.m, ct.m
		digits := func(n int, all9 bool) string {
			var b strings.Builder
			for i := 0; i < n; i++ {
				if all9 {
					b.WriteByte('9')
				} else {
					b.WriteByte(byte('0' + r.IntN(10)))
				}
			}
			return b.String()
		}
		all9 := r.IntN(5) == 0
		in, fn := ip, fp
		if !all9 {
			in, fn = r.IntN(ip+1), r.IntN(fp+1)
		}
		s := digits(in, all9)
		if s == "" {
			s = "0"
		}
		if fn > 0 {
			s += "." + digits(fn, all9)
		}
		if !ct.unsigned && r.IntN(3) == 0 {
			s = "-" + s
		}
		if r.IntN(2) == 0 {
			return "'" + s + "'"
		}
		return s
	case "float":
		pool := []string{"0e0", "1e0", "-1.5e0", "3.4028234e38", "-3.4028234e38", "1e-30", "1.1754944e-38", "0.1e0", "16777217e0", "3.1415927e0"}
		if r.IntN(2) == 0 {
			return pool[r.IntN(len(pool))]
		}
		if r.IntN(12) == 0 {
			return "-0e0"
		}
		f := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30)))
		s := strconv.FormatFloat(float64(f), 'g', -1, 32)
		if !strings.ContainsAny(s, "e") {
			s += "e0"
		}
		return s
	case "double":
		pool := []float64{0, 1, -2.5, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 0.1, 0.30000000000000004, 9007199254740993, 1e-300}
		var f float64
		if r.IntN(2) == 0 {
			f = pool[r.IntN(len(pool))]
		} else {
			f = r.NormFloat64() * math.Pow(10, float64(r.IntN(600)-300))
		}
		if r.IntN(12) == 0 {
			return "-0e0"
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, "e") {
			s += "e0"
		}
		return s
	case "bit":
		v := r.Uint64()
		if ct.n < 64 {
			v &= 1<<uint(ct.n) - 1
		}
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("b'%b'", v)
		case 1:
			return strconv.FormatUint(v, 10)
		case 2:
			if ct.n == 64 {
				return "18446744073709551615"
			}
			return strconv.FormatUint(1<<uint(ct.n)-1, 10)
		}
		return fmt.Sprintf("b'%b'", v)
	case "date":
		return "'" + g.date(true) + "'"
	case "datetime":
		return "'" + g.date(true) + " " + g.clock(ct.n) + "'"
	case "timestamp":
		if g.mode.zeroDates && r.IntN(12) == 0 {
			return "'0000-00-00 00:00:00'"
		}
		if r.IntN(10) == 0 {
			return fmt.Sprintf("CURRENT_TIMESTAMP(%d)", ct.n)
		}
		// 1971 to 2037: inside TIMESTAMP's range in any session zone.
		return fmt.Sprintf("'%04d-%02d-%02d %s'", 1971+r.IntN(67), 1+r.IntN(12), 1+r.IntN(28), g.clock(ct.n))
	case "time":
		h := r.IntN(839)
		if r.IntN(6) == 0 {
			h = 838
		}
		s := fmt.Sprintf("%d:%02d:%02d", h, r.IntN(60), r.IntN(60))
		if h == 838 {
			s = "838:59:59"
		} else if ct.n > 0 {
			s += "." + g.frac(ct.n)
		}
		if r.IntN(3) == 0 {
			s = "-" + s
		}
		return "'" + s + "'"
	case "year":
		switch r.IntN(5) {
		case 0:
			return "0"
		case 1:
			return "2155"
		}
		return strconv.Itoa(1901 + r.IntN(255))
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		cs := t.colCharset(c)
		maxChars, maxBytes := 200, 60000
		switch ct.base {
		case "char", "varchar":
			maxChars = ct.n
			if cs.name == "binary" {
				maxBytes = ct.n
			}
		case "tinytext":
			maxBytes = 255
		case "mediumtext", "longtext":
			if r.IntN(10) == 0 && !g.small {
				maxChars = 30000
				maxBytes = 200000
			}
		}
		return g.stringLit(cs, maxChars, maxBytes)
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		n := 0
		switch ct.base {
		case "binary", "varbinary":
			n = r.IntN(ct.n + 1)
		case "tinyblob":
			n = r.IntN(256)
		case "blob":
			n = r.IntN(2000)
			if g.small {
				n = r.IntN(100)
			}
		default:
			n = r.IntN(3000)
			if r.IntN(20) == 0 && !g.small {
				n = 50000 + r.IntN(100000)
			}
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if n > 0 && r.IntN(3) == 0 {
			for i := n - 1 - r.IntN(min(n, 4)); i < n; i++ {
				b[i] = 0 // trailing zero bytes
			}
		}
		if n == 0 {
			return "''"
		}
		return "X'" + hex.EncodeToString(b) + "'"
	case "enum":
		m := ct.members[r.IntN(len(ct.members))]
		if r.IntN(8) == 0 {
			return strconv.Itoa(1 + r.IntN(len(ct.members))) // by index
		}
		return g.quoteString(m)
	case "set":
		var in []string
		for _, m := range ct.members {
			if r.IntN(2) == 0 {
				in = append(in, m)
			}
		}
		return g.quoteString(strings.Join(in, ","))
	case "json":
		return g.quoteString(g.json(3))
	case "uuid":
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		// MariaDB refuses some versions in some variants (10.11.19: 8 in
		// NCS, A in RFC 4122): keep to RFC 4122's variant and versions 1-5.
		b[6] = b[6]&0x0f | byte(1+r.IntN(5))<<4
		b[8] = b[8]&0x3f | 0x80
		if r.IntN(3) == 0 {
			for i := 10; i < 16; i++ {
				b[i] = 0
			}
		}
		if r.IntN(10) == 0 {
			b = make([]byte, 16)
		}
		h := hex.EncodeToString(b)
		return fmt.Sprintf("'%s-%s-%s-%s-%s'", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
	case "inet6":
		pool := []string{"::", "::1", "2001:db8::", "::ffff:10.0.0.0", "fe80::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1:2:3:4:5:6:7:0"}
		if r.IntN(2) == 0 {
			return "'" + pool[r.IntN(len(pool))] + "'"
		}
		var p []string
		for i := 0; i < 8; i++ {
			p = append(p, strconv.FormatUint(uint64(r.IntN(65536)), 16))
		}
		return "'" + strings.Join(p, ":") + "'"
	case "inet4":
		pool := []string{"0.0.0.0", "255.255.255.255", "10.0.0.0", "127.0.0.1"}
		if r.IntN(2) == 0 {
			return "'" + pool[r.IntN(len(pool))] + "'"
		}
		return fmt.Sprintf("'%d.%d.%d.%d'", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256))
	}
	panic("randmy: no value for " + ct.base)
}

func (g *Gen) frac(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(byte('0' + g.rnd.IntN(10)))
	}
	return b.String()
}

func (g *Gen) clock(fsp int) string {
	r := g.rnd
	if r.IntN(8) == 0 {
		s := "23:59:59"
		if fsp > 0 {
			s += "." + strings.Repeat("9", fsp)
		}
		return s
	}
	s := fmt.Sprintf("%02d:%02d:%02d", r.IntN(24), r.IntN(60), r.IntN(60))
	if fsp > 0 {
		s += "." + g.frac(fsp)
	}
	return s
}

// date returns a DATE literal's text; zero and invalid dates where the
// session's sql_mode accepts them.
func (g *Gen) date(zeroOK bool) string {
	r := g.rnd
	switch k := r.IntN(14); {
	case k == 0 && zeroOK && g.mode.zeroDates:
		return "0000-00-00"
	case k == 1 && zeroOK && g.mode.zeroDates:
		return fmt.Sprintf("%04d-00-%02d", 1000+r.IntN(9000), r.IntN(29))
	case k == 2 && g.mode.invalidDates:
		return fmt.Sprintf("%04d-02-%02d", 1000+r.IntN(9000), 29+r.IntN(3))
	case k == 3:
		return "9999-12-31"
	case k == 4:
		return "1000-01-01"
	case k == 5:
		return fmt.Sprintf("%04d-%02d-%02d", 1+r.IntN(999), 1+r.IntN(12), 1+r.IntN(28))
	}
	return fmt.Sprintf("%04d-%02d-%02d", 1000+r.IntN(9000), 1+r.IntN(12), 1+r.IntN(28))
}

// runes the strings draw from: quotes, backslashes, NUL, spaces, Latin-1,
// BMP and 4-byte characters.
var stringRunes = []rune{'a', 'Z', '0', ' ', '\'', '"', '\\', '`', 0, '\n', '\t', '%', '_', ',', 'é', 'ß', 'ÿ', 'Ä', '\u00a0', '€', 'Ω', 'ж', '中', '\u200b', '\ufeff', '😀', '𝄞', '💊'}

// stringLit returns a literal for a string in charset cs of at most
// maxChars characters and maxBytes bytes.
func (g *Gen) stringLit(cs charset, maxChars, maxBytes int) string {
	r := g.rnd
	n := r.IntN(min(maxChars, 40) + 1)
	if maxChars > 40 && r.IntN(10) == 0 {
		n = r.IntN(maxChars + 1)
	}
	return g.literal(cs, g.randString(cs, "", n, maxBytes, r.IntN(4) == 0))
}

// randString returns prefix and then random characters of charset cs
// encoded in it, n characters and at most maxBytes bytes in all, ending
// in spaces if spaces is set.
func (g *Gen) randString(cs charset, prefix string, n, maxBytes int, spaces bool) []byte {
	r := g.rnd
	rs := []rune(prefix)
	for len(rs) < n {
		c := stringRunes[r.IntN(len(stringRunes))]
		if cs.maxRune != 0 && c > cs.maxRune {
			continue
		}
		if cs.name == "latin1" && c == '€' {
			c = 'e' // MariaDB's latin1 is cp1252, but keep to ISO 8859-1
		}
		rs = append(rs, c)
	}
	if spaces && len(rs) > len([]rune(prefix))+2 {
		rs[len(rs)-1], rs[len(rs)-2] = ' ', ' '
	}
	var b []byte
	for _, c := range rs {
		var enc []byte
		if cs.name == "latin1" {
			enc = []byte{byte(c)}
		} else {
			enc = utf8.AppendRune(nil, c)
		}
		if len(b)+len(enc) > maxBytes {
			break
		}
		b = append(b, enc...)
	}
	return b
}

// literal writes string b (bytes in charset cs) as a literal: as hex with
// the charset's introducer, or quoted through the utf8mb4 client.
func (g *Gen) literal(cs charset, b []byte) string {
	if len(b) == 0 {
		return "''"
	}
	if cs.name != "latin1" && utf8.Valid(b) && g.rnd.IntN(2) == 0 {
		return g.quoteString(string(b))
	}
	intro := "_" + cs.name + " "
	if cs.name == "binary" {
		intro = ""
	}
	return intro + "X'" + hex.EncodeToString(b) + "'"
}

// json returns a random JSON document.
func (g *Gen) json(depth int) string {
	r := g.rnd
	scalars := []string{`null`, `true`, `false`, `0`, `-0.0`, `1.5e300`, `-12345678901234567890`, `"it's"`, `"back\\slash \"q\""`, `"é 😀 \u0000"`, `""`, `3.141592653589793`}
	if depth == 0 || r.IntN(3) == 0 {
		return scalars[r.IntN(len(scalars))]
	}
	n := r.IntN(4)
	var parts []string
	if r.IntN(2) == 0 {
		for i := 0; i < n; i++ {
			parts = append(parts, g.json(depth-1))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	keys := []string{"a", "B", "key with space", "ü", "😀", "x\\\"y"}
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf("%q: %s", keys[(i+r.IntN(6))%6]+strconv.Itoa(i), g.json(depth-1)))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
