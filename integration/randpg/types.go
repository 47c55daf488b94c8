package randpg

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a column type the generator uses, with a generator of its
// values as SQL expressions.
type Type struct {
	SQL string // as written in DDL (user types schema-qualified and quoted)
	// Val returns a non-NULL SQL expression of the type.
	Val func(g *Gen) string
	// Big, if set, returns a value over 2 kB that does not compress well,
	// so that it is stored out of line (TOAST).
	Big func(g *Gen) string
	// Ext is the contrib extension the type needs, if any.
	Ext string
	// AlterTo lists the types (their SQL) a column of this type may be
	// changed to by ALTER COLUMN … TYPE: conversions that never read the
	// session's settings or the clock.
	AlterTo []string
	// NoEq marks types without a default btree operator class (they may
	// not be keys or be indexed).
	NoEq bool
}

// lit quotes s as a standard SQL string literal.
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// cast writes s as a literal of type typ.
func cast(s, typ string) string { return lit(s) + "::" + typ }

// ident quotes an identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// textPieces are what random strings are made of: quotes, backslashes,
// array and record punctuation, whitespace, multi-byte and combining
// characters, right-to-left text. Never NUL, which text cannot hold.
var textPieces = []string{
	"a", "Z", "q", "0", "9", " ", "  ", "'", "''", `"`, `\`, `\\`, `\n`, "\t", "\n", "\r\n",
	"é", "ß", "Å", "漢字", "🙂", "👩‍⚕️", "e\u0301", "שלום", "ﬁ", "\u00a0", "\u200b",
	"NULL", "null", "{", "}", "(", ")", ",", "%", "_", "$$", "--", "/*", ";", "=>", ":", "&", "<", ">",
}

func (g *Gen) str(maxPieces int) string {
	var b strings.Builder
	n := g.r.IntN(maxPieces + 1)
	for range n {
		b.WriteString(textPieces[g.r.IntN(len(textPieces))])
	}
	return b.String()
}

// plainWord is a short string of ASCII letters.
func (g *Gen) plainWord() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	n := 1 + g.r.IntN(8)
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[g.r.IntN(len(letters))]
	}
	return string(b)
}

// noise returns n characters that compress poorly (so a value stays large
// after pglz), with some multi-byte ones.
func (g *Gen) noise(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ 'é漢\\\""
	rs := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(rs[g.r.IntN(len(rs))])
	}
	return b.String()
}

func (g *Gen) pick(ss ...string) string { return ss[g.r.IntN(len(ss))] }

func (g *Gen) intLit(bits int) string {
	lo, hi := int64(math.MinInt16), int64(math.MaxInt16)
	switch bits {
	case 32:
		lo, hi = math.MinInt32, math.MaxInt32
	case 64:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	switch g.r.IntN(6) {
	case 0:
		return strconv.FormatInt(lo, 10)
	case 1:
		return strconv.FormatInt(hi, 10)
	case 2:
		return g.pick("0", "-1", "1")
	default:
		return strconv.FormatInt(g.r.Int64N(2001)-1000, 10)
	}
}

func (g *Gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

// numericLit returns a numeric literal that fits numeric(p, s) (p = 0:
// unconstrained).
func (g *Gen) numericLit(p, s int) string {
	sign := g.pick("", "", "-")
	if p == 0 {
		switch g.r.IntN(8) {
		case 0:
			return cast(g.pick("NaN", "Infinity", "-Infinity"), "numeric")
		case 1: // extreme scale
			return cast(sign+"0."+strings.Repeat("0", 200+g.r.IntN(800))+g.digits(1+g.r.IntN(20)), "numeric")
		case 2: // huge
			return cast(sign+"1"+g.digits(100+g.r.IntN(300))+"."+g.digits(g.r.IntN(50)), "numeric")
		case 3:
			return cast(sign+"1e-"+strconv.Itoa(1+g.r.IntN(1000)), "numeric")
		case 4: // trailing zeros: the scale is part of the value
			return cast(sign+g.digits(1+g.r.IntN(5))+"."+g.digits(g.r.IntN(3))+"000", "numeric")
		}
		return cast(sign+g.digits(1+g.r.IntN(20))+"."+g.digits(g.r.IntN(30)), "numeric")
	}
	if g.r.IntN(10) == 0 {
		return cast("NaN", "numeric")
	}
	switch {
	case s < 0: // rounds to 10^-s; stay a digit below the limit
		return cast(sign+g.digits(1+g.r.IntN(p-s-1)), "numeric")
	case s > p: // below 10^(p-s)
		return cast(sign+"0."+strings.Repeat("0", s-p)+g.digits(1+g.r.IntN(p)), "numeric")
	default:
		intDigits := p - s - 1
		ip := "0"
		if intDigits > 0 {
			ip = g.digits(1 + g.r.IntN(intDigits))
		}
		return cast(sign+ip+"."+g.digits(g.r.IntN(s+3)), "numeric")
	}
}

func (g *Gen) floatLit(typ string, bits int) string {
	switch g.r.IntN(7) {
	case 0:
		return cast(g.pick("NaN", "Infinity", "-Infinity", "-0", "0"), typ)
	case 1:
		if bits == 32 {
			return cast(g.pick("1.4e-45", "3.4028235e38", "-1.17549435e-38", "1.0000001"), typ)
		}
		return cast(g.pick("5e-324", "1.7976931348623157e308", "-2.2250738585072014e-308", "0.30000000000000004"), typ)
	}
	f := g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(40)-20))
	return cast(strconv.FormatFloat(f, 'g', -1, bits), typ)
}

func (g *Gen) dateLit() string {
	switch g.r.IntN(8) {
	case 0:
		return g.pick("infinity", "-infinity")
	case 1:
		return fmt.Sprintf("%04d-%02d-%02d BC", 1+g.r.IntN(4712), 1+g.r.IntN(12), 1+g.r.IntN(28))
	case 2:
		return g.pick("5874897-12-31", "4713-01-01 BC", "2000-02-29", "1900-02-28")
	}
	return fmt.Sprintf("%04d-%02d-%02d", 1+g.r.IntN(9999), 1+g.r.IntN(12), 1+g.r.IntN(28))
}

func (g *Gen) timeLit() string {
	frac := ""
	if g.r.IntN(2) == 0 {
		frac = "." + g.digits(1+g.r.IntN(6))
	}
	return fmt.Sprintf("%02d:%02d:%02d%s", g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), frac)
}

func (g *Gen) offsetLit() string {
	return g.pick("+00", "+05:30", "-03:30", "+05:45", "-12", "+14", "+13:45", "-00:00:30", "Z")
}

func (g *Gen) timestampLit(tz bool) string {
	switch g.r.IntN(8) {
	case 0:
		return g.pick("infinity", "-infinity")
	case 1:
		s := fmt.Sprintf("%04d-%02d-%02d %s", 1+g.r.IntN(4713), 1+g.r.IntN(12), 1+g.r.IntN(28), g.timeLit())
		if tz {
			s += g.offsetLit()
		}
		return s + " BC"
	case 2:
		if tz {
			return g.pick("294276-12-31 23:59:59+00", "2000-01-01 00:00:00+14", "1901-12-13 20:45:52+00")
		}
		return g.pick("294276-12-31 23:59:59", "2000-01-01 00:00:00", "1970-01-01 00:00:00.000001")
	}
	s := fmt.Sprintf("%04d-%02d-%02d %s", 1+g.r.IntN(9999), 1+g.r.IntN(12), 1+g.r.IntN(28), g.timeLit())
	if tz && g.r.IntN(4) != 0 {
		s += g.offsetLit()
	}
	return s
}

func (g *Gen) intervalLit() string {
	switch g.r.IntN(6) {
	case 0:
		return g.pick("0", "-178000000 years", "178000000 years", "1 mon -1 day", "-1 day +02:03:04.5", "P1Y2M3DT4H5M6.7S", "@ 1 minute ago")
	case 1:
		return fmt.Sprintf("%d microseconds", g.r.Int64N(1e12)-5e11)
	}
	return fmt.Sprintf("%d years %d mons %d days %d:%02d:%02d.%s", g.r.IntN(200)-100, g.r.IntN(40)-20,
		g.r.IntN(1000)-500, g.r.IntN(100), g.r.IntN(60), g.r.IntN(60), g.digits(1+g.r.IntN(6)))
}

func (g *Gen) bytesLit(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	if g.r.IntN(3) == 0 && n > 0 {
		b[n-1] = 0
	}
	return `'\x` + hex.EncodeToString(b) + `'::bytea`
}

// jsonText returns JSON text with odd spacing, duplicate keys, escapes,
// Unicode and numbers json keeps as written.
func (g *Gen) jsonText(depth int) string {
	if depth > 2 {
		return g.pick(`1`, `-0`, `1.50`, `1e400`, `true`, `null`, `"x"`, `"\u00e9\n"`, `12345678901234567890.123`)
	}
	switch g.r.IntN(4) {
	case 0:
		var parts []string
		for range g.r.IntN(4) {
			parts = append(parts, g.jsonText(depth+1))
		}
		return "[" + strings.Join(parts, g.pick(",", " , ", ",\n")) + "]"
	case 1, 2:
		var parts []string
		for range g.r.IntN(5) {
			k := g.pick("a", "b", "a", "ключ", "\\\"q", "")
			parts = append(parts, fmt.Sprintf(`"%s"%s%s`, k, g.pick(":", " : "), g.jsonText(depth+1)))
		}
		return "{" + strings.Join(parts, g.pick(",", ", ")) + "}"
	}
	s := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(g.str(4))
	return `"` + s + `"`
}

func (g *Gen) xmlLit() string {
	switch g.r.IntN(4) {
	case 0:
		return cast("plain text &amp; more", "xml")
	case 1:
		return cast("", "xml")
	}
	return cast(fmt.Sprintf(`<r a="%d"><b>%s</b><c/>tail &lt; é</r>`, g.r.IntN(100), g.plainWord()), "xml")
}

func (g *Gen) inetLit(cidr bool) string {
	if g.r.IntN(2) == 0 {
		a, b := g.r.IntN(256), g.r.IntN(256)
		if cidr {
			return fmt.Sprintf("%d.%d.0.0/16", a, b)
		}
		return fmt.Sprintf("%d.%d.%d.%d/%d", a, b, g.r.IntN(256), g.r.IntN(256), 8+g.r.IntN(25))
	}
	if cidr {
		return fmt.Sprintf("2001:db8:%x::/48", g.r.IntN(65536))
	}
	return fmt.Sprintf("2001:db8::%x/%d", g.r.IntN(65536), 64+g.r.IntN(65))
}

func (g *Gen) macLit(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%02x", g.r.IntN(256))
	}
	return strings.Join(parts, ":")
}

func (g *Gen) rangeLit(typ string, elem func() (string, string)) string {
	switch g.r.IntN(5) {
	case 0:
		return cast("empty", typ)
	case 1:
		lo, _ := elem()
		return cast(fmt.Sprintf("[%q,)", lo), typ)
	}
	lo, hi := elem()
	return cast(fmt.Sprintf("%s%q,%q%s", g.pick("[", "("), lo, hi, g.pick("]", ")")), typ)
}

func (g *Gen) intPair(span int) (string, string) {
	a := g.r.IntN(2000) - 1000
	return strconv.Itoa(a), strconv.Itoa(a + 2 + g.r.IntN(span))
}

// arrayOf returns an array expression of element expressions, with NULLs,
// sometimes two-dimensional or empty.
func (g *Gen) arrayOf(elem *Type, arrType string) string {
	switch g.r.IntN(6) {
	case 0:
		return cast("{}", arrType)
	case 1: // two dimensions
		rows, cols := 1+g.r.IntN(3), 1+g.r.IntN(3)
		var rs []string
		for range rows {
			var es []string
			for range cols {
				es = append(es, g.maybeNull(elem))
			}
			rs = append(rs, "ARRAY["+strings.Join(es, ", ")+"]")
		}
		return "ARRAY[" + strings.Join(rs, ", ") + "]::" + arrType
	}
	var es []string
	for range 1 + g.r.IntN(4) {
		es = append(es, g.maybeNull(elem))
	}
	return "ARRAY[" + strings.Join(es, ", ") + "]::" + arrType
}

func (g *Gen) maybeNull(t *Type) string {
	if g.r.IntN(5) == 0 {
		return "NULL::" + t.SQL
	}
	return t.Val(g)
}

func ean13(digits12 string) string {
	sum := 0
	for i, c := range digits12 {
		d := int(c - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return digits12 + strconv.Itoa((10-sum%10)%10)
}

// bigText is a text value over 2 kB that does not compress well.
func bigText(g *Gen) string { return lit(g.noise(2500 + g.r.IntN(6000))) }

// builtinTypes returns the built-in and contrib types. User types (enums,
// domains, composites) are added by the schema generator.
func builtinTypes() []*Type {
	ts := []*Type{
		{SQL: "smallint", Val: func(g *Gen) string { return g.intLit(16) }, AlterTo: []string{"integer", "bigint", "numeric"}},
		{SQL: "integer", Val: func(g *Gen) string { return g.intLit(32) }, AlterTo: []string{"bigint", "numeric", "text"}},
		{SQL: "bigint", Val: func(g *Gen) string { return g.intLit(64) }, AlterTo: []string{"numeric", "text"}},
		{SQL: "numeric", Val: func(g *Gen) string { return g.numericLit(0, 0) }, AlterTo: []string{"text"}},
		{SQL: "numeric(1000,990)", Val: func(g *Gen) string { return g.numericLit(1000, 990) }, AlterTo: []string{"numeric"}},
		{SQL: "numeric(12,2)", Val: func(g *Gen) string { return g.numericLit(12, 2) }, AlterTo: []string{"numeric", "numeric(14,4)"}},
		{SQL: "numeric(14,4)", Val: func(g *Gen) string { return g.numericLit(14, 4) }},
		{SQL: "numeric(5,-3)", Val: func(g *Gen) string { return g.numericLit(5, -3) }, AlterTo: []string{"numeric"}},
		{SQL: "numeric(3,6)", Val: func(g *Gen) string { return g.numericLit(3, 6) }, AlterTo: []string{"numeric"}},
		{SQL: "real", Val: func(g *Gen) string { return g.floatLit("real", 32) }, AlterTo: []string{"double precision"}},
		{SQL: "double precision", Val: func(g *Gen) string { return g.floatLit("double precision", 64) }, AlterTo: []string{"text"}},
		{SQL: "boolean", Val: func(g *Gen) string { return g.pick("true", "false") }},
		{SQL: "text", Val: func(g *Gen) string { return lit(g.str(6)) }, AlterTo: []string{`text COLLATE "C"`, `text COLLATE "und-x-icu"`},
			Big: bigText},
		// A text column altered to these keeps its big values: they are
		// big too, so nothing indexes them (seed 982720800: an index on
		// such a column overflowed an index entry).
		{SQL: `text COLLATE "C"`, Val: func(g *Gen) string { return lit(g.str(4)) }, Big: bigText},
		{SQL: `text COLLATE "und-x-icu"`, Val: func(g *Gen) string { return lit(g.str(4)) }, Big: bigText},
		{SQL: "varchar(12)", Val: func(g *Gen) string { return lit(trunc(g.str(4), 12)) }, AlterTo: []string{"text", "varchar(40)"}},
		{SQL: "varchar(40)", Val: func(g *Gen) string { return lit(trunc(g.str(8), 40)) }, AlterTo: []string{"text"}},
		{SQL: "char(5)", Val: func(g *Gen) string { return lit(trunc(g.str(2), 5)) }, AlterTo: []string{"text"}},
		{SQL: `"char"`, Val: func(g *Gen) string { return cast(g.pick("a", "Z", " ", "'"), `"char"`) }},
		{SQL: "name", Val: func(g *Gen) string { return cast(trunc(g.str(4), 20), "name") }},
		{SQL: "bytea", Val: func(g *Gen) string { return g.bytesLit(g.r.IntN(24)) }, AlterTo: []string{"text"},
			Big: func(g *Gen) string { return g.bytesLit(2500 + g.r.IntN(5000)) }},
		{SQL: "date", Val: func(g *Gen) string { return cast(g.dateLit(), "date") }, AlterTo: []string{"text"}},
		{SQL: "time", Val: func(g *Gen) string { return cast(g.pick(g.timeLit(), "24:00:00", "00:00:00"), "time") }},
		{SQL: "time(2)", Val: func(g *Gen) string { return cast(g.timeLit(), "time(2)") }},
		{SQL: "timetz", Val: func(g *Gen) string { return cast(g.timeLit()+g.pick("+05:30", "-11", "+00", "+15:59"), "timetz") }},
		{SQL: "timestamp", Val: func(g *Gen) string { return cast(g.timestampLit(false), "timestamp") }, AlterTo: []string{"text"}},
		{SQL: "timestamp(0)", Val: func(g *Gen) string { return cast(g.timestampLit(false), "timestamp(0)") }},
		{SQL: "timestamptz", Val: func(g *Gen) string { return cast(g.timestampLit(true), "timestamptz") }, AlterTo: []string{"text"}},
		{SQL: "timestamptz(3)", Val: func(g *Gen) string { return cast(g.timestampLit(true), "timestamptz(3)") }},
		{SQL: "interval", Val: func(g *Gen) string { return cast(g.intervalLit(), "interval") }, AlterTo: []string{"text"}},
		{SQL: "interval day to second(2)", Val: func(g *Gen) string { return cast(g.intervalLit(), "interval day to second(2)") }},
		{SQL: "money", Val: func(g *Gen) string {
			return cast(g.pick("92233720368547758.07", "-92233720368547758.08", "0", "12.34", "-0.01", g.digits(1+g.r.IntN(8))+"."+g.digits(2)), "money")
		}},
		{SQL: "uuid", Val: func(g *Gen) string {
			return cast(fmt.Sprintf("%016x%016x", g.r.Uint64(), g.r.Uint64()), "uuid")
		}, AlterTo: []string{"text"}},
		{SQL: "json", Val: func(g *Gen) string { return cast(g.jsonText(0), "json") }, NoEq: true, AlterTo: []string{"jsonb", "text"},
			Big: func(g *Gen) string { return cast(`{"big": "`+jsonEscape(g.noise(3000))+`", "n": 1.50}`, "json") }},
		{SQL: "jsonb", Val: func(g *Gen) string { return cast(g.jsonText(0), "jsonb") },
			Big: func(g *Gen) string {
				return cast(`{"big": "`+jsonEscape(g.noise(3000+g.r.IntN(4000)))+`", "k": [1, 2.50, null]}`, "jsonb")
			}},
		{SQL: "xml", Val: func(g *Gen) string { return g.xmlLit() }, NoEq: true, AlterTo: []string{"text"}},
		{SQL: "inet", Val: func(g *Gen) string { return cast(g.inetLit(false), "inet") }, AlterTo: []string{"text"}},
		{SQL: "cidr", Val: func(g *Gen) string { return cast(g.inetLit(true), "cidr") }, AlterTo: []string{"inet"}},
		{SQL: "macaddr", Val: func(g *Gen) string { return cast(g.macLit(6), "macaddr") }, AlterTo: []string{"macaddr8"}},
		{SQL: "macaddr8", Val: func(g *Gen) string { return cast(g.macLit(8), "macaddr8") }},
		{SQL: "tsvector", Val: func(g *Gen) string {
			return cast(g.pick("a fat cat:1A sat:2B,3 'don''t':4", "", "'é漢字':1 x", g.plainWord()+":"+strconv.Itoa(1+g.r.IntN(99))), "tsvector")
		}},
		{SQL: "tsquery", Val: func(g *Gen) string {
			return cast(g.pick("fat & (rat | !cat)", "a:* <-> b", "'x y' <2> z:AB"), "tsquery")
		}},
		{SQL: "int4range", Val: func(g *Gen) string { return g.rangeLit("int4range", func() (string, string) { return g.intPair(50) }) }},
		{SQL: "int8range", Val: func(g *Gen) string { return g.rangeLit("int8range", func() (string, string) { return g.intPair(1e6) }) }},
		{SQL: "numrange", Val: func(g *Gen) string {
			return g.rangeLit("numrange", func() (string, string) { return "1.50", "2." + g.digits(1+g.r.IntN(10)) })
		}},
		{SQL: "daterange", Val: func(g *Gen) string {
			return g.rangeLit("daterange", func() (string, string) { return "2000-01-01", fmt.Sprintf("20%02d-06-15", 1+g.r.IntN(99)) })
		}},
		{SQL: "tstzrange", Val: func(g *Gen) string {
			return g.rangeLit("tstzrange", func() (string, string) {
				return "2001-02-03 04:05:06.789+05:30", fmt.Sprintf("20%02d-06-15 00:00:00+00", 2+g.r.IntN(97))
			})
		}},
		{SQL: "tsrange", Val: func(g *Gen) string {
			return g.rangeLit("tsrange", func() (string, string) { return "1999-12-31 23:59:59", "2000-01-01 00:00:00.5" })
		}},
		{SQL: "int4multirange", Val: func(g *Gen) string {
			return cast(g.pick("{}", "{[1,3), [5,8)}", "{(,0], [10,)}", fmt.Sprintf("{[%d,%d]}", g.r.IntN(10), 10+g.r.IntN(10))), "int4multirange")
		}},
		{SQL: "bit(8)", Val: func(g *Gen) string { return fmt.Sprintf("B'%08b'", g.r.IntN(256)) }, AlterTo: []string{"varbit"}},
		{SQL: "varbit", Val: func(g *Gen) string { return fmt.Sprintf("B'%b'", g.r.IntN(1<<20)) }},
		{SQL: "point", Val: func(g *Gen) string {
			return cast(fmt.Sprintf("(%s,%s)", g.pick("1.5", "-0", "1e300", "NaN"), strconv.FormatFloat(g.r.NormFloat64(), 'g', -1, 64)), "point")
		}, NoEq: true},
		{SQL: "box", Val: func(g *Gen) string { return cast("(1,2),(3.25,-4)", "box") }, NoEq: true},
		{SQL: "circle", Val: func(g *Gen) string { return cast(fmt.Sprintf("<(0,%d),1.5>", g.r.IntN(9)), "circle") }, NoEq: true},
		{SQL: "lseg", Val: func(g *Gen) string { return cast("[(0,0),(1,0.1)]", "lseg") }, NoEq: true},
		{SQL: "path", Val: func(g *Gen) string { return cast(g.pick("[(0,0),(1,1),(2,0)]", "((0,0),(1,1))"), "path") }, NoEq: true},
		{SQL: "polygon", Val: func(g *Gen) string { return cast("((0,0),(1,1),(1,0))", "polygon") }, NoEq: true},
		{SQL: "line", Val: func(g *Gen) string { return cast("{1,-1,0.5}", "line") }, NoEq: true},
		{SQL: "pg_lsn", Val: func(g *Gen) string { return cast(fmt.Sprintf("%X/%X", g.r.Uint32(), g.r.Uint32()), "pg_lsn") }},
		{SQL: "oid", Val: func(g *Gen) string { return cast(strconv.FormatUint(uint64(g.r.Uint32()), 10), "oid") }},
		// contrib (postgresql-contrib ships with Debian's postgresql-15)
		{SQL: "citext", Ext: "citext", Val: func(g *Gen) string { return cast(g.str(4), "citext") }, AlterTo: []string{"text"}},
		{SQL: "hstore", Ext: "hstore", Val: func(g *Gen) string {
			return cast(g.pick(`"a"=>"1", "b"=>NULL`, ``, `"k y"=>"v\"q", "é"=>"漢"`, `"x"=>"`+g.plainWord()+`"`), "hstore")
		}},
		{SQL: "ltree", Ext: "ltree", Val: func(g *Gen) string {
			return cast(g.pick("Top.Science.Astronomy", "", "a", "Top."+g.plainWord()), "ltree")
		}},
		{SQL: "cube", Ext: "cube", Val: func(g *Gen) string { return cast(g.pick("(1,2),(3,4)", "(1e300)", "(-0.5, 2, 3)"), "cube") }},
		// Not '~6.30 .. 7.0': seg prints it as '~6.30 .. ', which reads
		// back as another value, so no text dump (pg_dump's neither) can
		// keep it.
		{SQL: "seg", Ext: "seg", Val: func(g *Gen) string { return cast(g.pick("5.0 .. 7.0", "<1.5", "~6.3", "1.5e3", "6.25 .. 6.50"), "seg") }},
		{SQL: "ean13", Ext: "isn", Val: func(g *Gen) string { return cast(ean13("0"+g.digits(11)), "ean13") }},
		{SQL: "isbn13", Ext: "isn", Val: func(g *Gen) string { return cast(ean13("978"+g.digits(9)), "isbn13") }},
	}
	byName := map[string]*Type{}
	for _, t := range ts {
		byName[t.SQL] = t
	}
	// Arrays of several element types.
	for _, e := range []string{"integer", "bigint", "text", "numeric", "timestamptz", "boolean", "bytea", "jsonb", "uuid", "date", "interval", "double precision", "citext"} {
		et := byName[e]
		arr := e + "[]"
		ts = append(ts, &Type{SQL: arr, Ext: et.Ext, Val: func(g *Gen) string { return g.arrayOf(et, arr) }})
	}
	ts = append(ts, &Type{SQL: "integer[]", Val: func(g *Gen) string {
		return cast(g.pick("[0:2]={1,NULL,3}", "[-2:-1][1:2]={{1,2},{3,4}}", "{{{1}},{{2}}}"), "integer[]")
	}}, &Type{SQL: "text[]", Val: func(g *Gen) string {
		return cast(g.pick(`{"a\"b","c,d",NULL,"NULL","",x}`, `{{"é","{}"},{"\\",NULL}}`), "text[]")
	}})
	return ts
}

func trunc(s string, n int) string {
	rs := []rune(s)
	if len(rs) > n {
		rs = rs[:n]
	}
	return string(rs)
}

func jsonEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
