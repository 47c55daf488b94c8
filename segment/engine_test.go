package segment

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestEngineText: an engine is written in archive documents by the name
// configuration and listings use, reads back as itself, and an unknown
// name or value is refused rather than read as no engine.
func TestEngineText(t *testing.T) {
	for _, e := range []Engine{EnginePostgres, EngineMySQL, EngineMariaDB, EngineSQLServer} {
		b, err := json.Marshal(struct{ E Engine }{e})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"E":"` + e.String() + `"}`; string(b) != want {
			t.Errorf("%v marshals as %s, want %s", e, b, want)
		}
		var back struct{ E Engine }
		if err := json.Unmarshal(b, &back); err != nil || back.E != e {
			t.Errorf("%s reads back as %v (%v)", b, back.E, err)
		}
	}
	var e struct{ E Engine }
	if err := json.Unmarshal([]byte(`{"E":"oracle"}`), &e); !errors.Is(err, ErrUnknownEngine) {
		t.Errorf("unknown engine name: %v, want ErrUnknownEngine", err)
	}
	if _, err := json.Marshal(struct{ E Engine }{Engine(9)}); !errors.Is(err, ErrUnknownEngine) {
		t.Errorf("marshal of engine 9: %v, want ErrUnknownEngine", err)
	}
}

// TestEngineFacts: what the engine-neutral packages ask of an engine.
func TestEngineFacts(t *testing.T) {
	for _, c := range []struct {
		e      Engine
		anchor string
		unique bool
		flag   string
	}{
		{EnginePostgres, "replication slot", false, "xid"},
		{EngineMySQL, "saved binlog position", true, "gtid"},
		{EngineMariaDB, "saved binlog position", true, "gtid"},
		{EngineSQLServer, "log position", false, ""},
	} {
		flag, _ := c.e.TxnIDFlag()
		if c.e.Anchor() != c.anchor || c.e.UniqueTxnIDs() != c.unique || flag != c.flag {
			t.Errorf("%v: anchor %q, unique ids %v, id flag %q; want %q, %v, %q", c.e, c.e.Anchor(), c.e.UniqueTxnIDs(), flag, c.anchor, c.unique, c.flag)
		}
	}
}

func TestUnknownMessage(t *testing.T) {
	for prefix, want := range map[string]bool{
		MsgHeartbeat: false, MsgSequences: false, MsgAutoIncrement: false, MsgDDLSession: false, MsgForeignKeyChecks: false,
		"app.audit": false, "": false, "rxvault.ddl": true, "rxvault.future": true,
	} {
		if got := UnknownMessage(prefix); got != want {
			t.Errorf("UnknownMessage(%q) = %v, want %v", prefix, got, want)
		}
	}
}
