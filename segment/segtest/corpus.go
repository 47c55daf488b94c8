// Package segtest generates realistic transactions for tests and
// benchmarks of the segment format: a pharmacy dispensing workload of
// patients, prescriptions, fills and claims, in PostgreSQL text forms.
package segtest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rxvault/rxvault/segment"
)

// Tables of the corpus. Their column lists are fixed.
var (
	Patients = &segment.Relation{Schema: "pharmacy", Table: "patients", Columns: []segment.Column{
		{Name: "id", Type: "bigint", TypeID: 20, Key: true},
		{Name: "mrn", Type: "text", TypeID: 25},
		{Name: "name", Type: "text", TypeID: 25},
		{Name: "dob", Type: "date", TypeID: 1082},
		{Name: "phone", Type: "text", TypeID: 25},
		{Name: "allergies", Type: "jsonb", TypeID: 3802},
		{Name: "updated_at", Type: "timestamp with time zone", TypeID: 1184},
	}}
	Prescriptions = &segment.Relation{Schema: "pharmacy", Table: "prescriptions", Columns: []segment.Column{
		{Name: "id", Type: "bigint", TypeID: 20, Key: true},
		{Name: "patient_id", Type: "bigint", TypeID: 20},
		{Name: "ndc", Type: "text", TypeID: 25},
		{Name: "sig", Type: "text", TypeID: 25},
		{Name: "quantity", Type: "numeric(10,3)", TypeID: 1700},
		{Name: "refills", Type: "integer", TypeID: 23},
		{Name: "prescriber_npi", Type: "text", TypeID: 25},
		{Name: "written_at", Type: "timestamp with time zone", TypeID: 1184},
	}}
	Fills = &segment.Relation{Schema: "pharmacy", Table: "fills", Columns: []segment.Column{
		{Name: "id", Type: "bigint", TypeID: 20, Key: true},
		{Name: "rx_id", Type: "bigint", TypeID: 20},
		{Name: "filled_at", Type: "timestamp with time zone", TypeID: 1184},
		{Name: "quantity", Type: "numeric(10,3)", TypeID: 1700},
		{Name: "days_supply", Type: "integer", TypeID: 23},
		{Name: "price", Type: "numeric(12,2)", TypeID: 1700},
		{Name: "pharmacist", Type: "text", TypeID: 25},
		{Name: "label", Type: "bytea", TypeID: 17},
	}}
	Claims = &segment.Relation{Schema: "pharmacy", Table: "claims", Columns: []segment.Column{
		{Name: "id", Type: "uuid", TypeID: 2950, Key: true},
		{Name: "fill_id", Type: "bigint", TypeID: 20},
		{Name: "payer", Type: "text", TypeID: 25},
		{Name: "status", Type: "text", TypeID: 25},
		{Name: "amount", Type: "numeric(12,2)", TypeID: 1700},
		{Name: "response", Type: "jsonb", TypeID: 3802},
	}}
)

var (
	firstNames = []string{"Ana", "Bo", "Chen", "Dmitri", "Efua", "Farah", "Goran", "Hana", "Ines", "Jamal", "Kenji", "Lucía", "Mei", "Noor", "Oskar", "Priya"}
	lastNames  = []string{"Okafor", "Schmidt", "Nguyen", "García", "Kowalski", "Haddad", "Johansson", "Tanaka", "O'Brien", "Rossi", "Dubois", "Singh"}
	drugs      = []string{"00093-7146-56", "00378-0208-01", "00591-0405-01", "00781-1506-10", "68180-0513-01", "00904-6294-61"}
	sigs       = []string{"Take 1 tablet by mouth once daily", "Take 1 capsule by mouth twice daily with food", "Apply a thin layer to affected area three times daily", "Inhale 2 puffs every 4 to 6 hours as needed for wheezing", "Take 1 tablet by mouth at bedtime"}
	payers     = []string{"BCBS", "AETNA", "MEDICARE-D", "CIGNA", "UHC", "MEDICAID"}
	statuses   = []string{"paid", "rejected", "reversed", "pending"}
)

// Corpus generates deterministic transactions from seed.
type Corpus struct {
	r   *rand.Rand
	pos uint64
	at  time.Time
	id  int64
}

// NewCorpus returns a generator whose stream starts at position 0x1000000
// and time 2026-01-05T09:00:00Z.
func NewCorpus(seed uint64) *Corpus {
	return &Corpus{
		r:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		pos: 0x1000000,
		at:  time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
	}
}

// Txn returns the next transaction: typically a new patient or
// prescription, a fill with its claim, or updates and deletes.
func (c *Corpus) Txn() segment.Txn {
	c.pos += 200 + c.r.Uint64N(4000)
	c.at = c.at.Add(time.Duration(1+c.r.IntN(250_000)) * time.Microsecond)
	t := segment.Txn{TxnInfo: segment.TxnInfo{
		ID:     fmt.Sprint(700 + c.pos/256),
		Pos:    segment.Position{Lo: c.pos},
		Commit: c.at,
	}}
	switch k := c.r.IntN(10); {
	case k < 2:
		t.Changes = append(t.Changes, c.insert(Patients, c.patient()))
	case k < 4:
		t.Changes = append(t.Changes, c.insert(Prescriptions, c.prescription()))
	case k < 8:
		fill := c.fill()
		t.Changes = append(t.Changes, c.insert(Fills, fill), c.insert(Claims, c.claim(fill[0])))
	case k < 9:
		old := c.claim(c.text(fmt.Sprint(c.r.Int64N(c.id + 1))))
		nw := append([]segment.Value(nil), old...)
		nw[3] = c.text(statuses[c.r.IntN(len(statuses))])
		t.Changes = append(t.Changes, segment.Change{Op: segment.OpUpdate, Rel: Claims, OldKind: segment.OldNone, New: nw})
	default:
		old := c.prescription()
		key := make([]segment.Value, len(old))
		key[0] = old[0]
		t.Changes = append(t.Changes, segment.Change{Op: segment.OpDelete, Rel: Prescriptions, OldKind: segment.OldKey, Old: key})
	}
	return t
}

// Txns returns the next n transactions.
func (c *Corpus) Txns(n int) []segment.Txn {
	out := make([]segment.Txn, n)
	for i := range out {
		out[i] = c.Txn()
	}
	return out
}

func (c *Corpus) insert(rel *segment.Relation, row []segment.Value) segment.Change {
	return segment.Change{Op: segment.OpInsert, Rel: rel, New: row}
}

func (c *Corpus) text(s string) segment.Value { return segment.TextValue(s) }

func (c *Corpus) nextID() segment.Value {
	c.id++
	return c.text(fmt.Sprint(c.id))
}

func (c *Corpus) ts() segment.Value {
	return c.text(c.at.Format("2006-01-02 15:04:05.999999-07"))
}

func (c *Corpus) patient() []segment.Value {
	name := firstNames[c.r.IntN(len(firstNames))] + " " + lastNames[c.r.IntN(len(lastNames))]
	allergies := segment.Value{}
	if c.r.IntN(3) > 0 {
		allergies = c.text(fmt.Sprintf(`{"allergies": [%q], "verified": %t}`, []string{"penicillin", "sulfa", "latex", "codeine"}[c.r.IntN(4)], c.r.IntN(2) == 0))
	}
	return []segment.Value{
		c.nextID(),
		c.text(fmt.Sprintf("MRN%08d", c.r.IntN(1e8))),
		c.text(name),
		c.text(fmt.Sprintf("19%02d-%02d-%02d", 30+c.r.IntN(70), 1+c.r.IntN(12), 1+c.r.IntN(28))),
		c.text(fmt.Sprintf("+1-555-%03d-%04d", c.r.IntN(1000), c.r.IntN(10000))),
		allergies,
		c.ts(),
	}
}

func (c *Corpus) prescription() []segment.Value {
	return []segment.Value{
		c.nextID(),
		c.text(fmt.Sprint(1 + c.r.IntN(int(c.id)+1))),
		c.text(drugs[c.r.IntN(len(drugs))]),
		c.text(sigs[c.r.IntN(len(sigs))]),
		c.text(fmt.Sprintf("%d.%03d", c.r.IntN(180), c.r.IntN(1000))),
		c.text(fmt.Sprint(c.r.IntN(12))),
		c.text(fmt.Sprintf("1%09d", c.r.IntN(1e9))),
		c.ts(),
	}
}

func (c *Corpus) fill() []segment.Value {
	label := make([]byte, 48+c.r.IntN(80))
	for i := range label {
		label[i] = byte(c.r.UintN(256))
	}
	return []segment.Value{
		c.nextID(),
		c.text(fmt.Sprint(1 + c.r.IntN(int(c.id)+1))),
		c.ts(),
		c.text(fmt.Sprintf("%d.000", 1+c.r.IntN(90))),
		c.text(fmt.Sprint([]int{7, 14, 30, 90}[c.r.IntN(4)])),
		c.text(fmt.Sprintf("%d.%02d", c.r.IntN(900), c.r.IntN(100))),
		c.text(strings.ToUpper(lastNames[c.r.IntN(len(lastNames))])),
		{Kind: segment.Binary, Data: label},
	}
}

func (c *Corpus) claim(fillID segment.Value) []segment.Value {
	u := c.r.Uint64()
	v := c.r.Uint64()
	return []segment.Value{
		c.text(fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", u>>32, u>>16&0xffff, u&0xfff, v>>52, v&0xffffffffffff)),
		fillID,
		c.text(payers[c.r.IntN(len(payers))]),
		c.text(statuses[c.r.IntN(len(statuses))]),
		c.text(fmt.Sprintf("%d.%02d", c.r.IntN(500), c.r.IntN(100))),
		c.text(fmt.Sprintf(`{"bin": "%06d", "pcn": "RX%04d", "auth": "%012d", "messages": []}`, c.r.IntN(1e6), c.r.IntN(1e4), c.r.Int64N(1e12))),
	}
}

// Header returns a header for txns as sequence seq of a chain, with the
// tally of txns applied and the end position and time at the last
// transaction.
func Header(chain segment.ChainID, seq uint64, prev segment.Digest, txns []segment.Txn) (segment.Header, error) {
	h := segment.Header{
		Engine:   segment.EnginePostgres,
		SourceID: "7390011223344556677",
		Chain:    chain,
		Seq:      seq,
		PrevHash: prev,
	}
	var t segment.Tally
	for i := range txns {
		if err := t.Add(txns[i].TxnInfo, uint64(len(txns[i].Changes))); err != nil {
			return h, err
		}
	}
	t.Apply(&h)
	h.EndPos, h.EndTime = h.LastPos, h.LastCommit
	return h, nil
}
