package mysql

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func triggerDump(def string) string {
	return "-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n--\n-- Host: 127.0.0.1    Database: pharmacy\n" +
		"INSERT INTO `rx` VALUES (1);\n" +
		"DELIMITER ;;\n" + def + "\nDELIMITER ;\n-- Dump completed\n"
}

// TestTriggerGuard: a trigger statement naming the source database is
// refused before any of it is passed on, unless the target has the
// source's name; other statements, and names that only end like the
// source's, pass whole, however the dump is read.
func TestTriggerGuard(t *testing.T) {
	const (
		qualified   = "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER pharmacy.log AFTER INSERT ON rx\nFOR EACH ROW INSERT INTO audit VALUES (NEW.id) */;;"
		quoted      = "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER log AFTER INSERT ON rx FOR EACH ROW BEGIN\n  INSERT INTO `Pharmacy` . audit VALUES (NEW.id);\nEND */;;"
		unqualified = "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER log AFTER INSERT ON rx FOR EACH ROW INSERT INTO mypharmacy.audit VALUES (NEW.id) */;;"
	)
	for _, tc := range []struct {
		name, def, target string
		refused           bool
	}{
		{"qualified", qualified, "drill", true},
		{"quoted, other case, spaced", quoted, "drill", true},
		{"qualified, same name", qualified, "pharmacy", false},
		{"another database's name ending alike", unqualified, "drill", false},
	} {
		for _, oneByte := range []bool{false, true} {
			in := triggerDump(tc.def)
			var r io.Reader = newTriggerGuard(strings.NewReader(in), tc.target)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(r)
			switch {
			case tc.refused && (err == nil || !strings.Contains(err.Error(), "names the source database `pharmacy` explicitly")):
				t.Errorf("%s: err = %v, want the refusal", tc.name, err)
			case tc.refused && strings.Contains(string(got), "TRIGGER"):
				t.Errorf("%s: part of the refused statement was passed on", tc.name)
			case !tc.refused && (err != nil || string(got) != in):
				t.Errorf("%s: err = %v, or the dump changed (%d bytes of %d)", tc.name, err, len(got), len(in))
			}
		}
	}
	_, err := io.ReadAll(newTriggerGuard(strings.NewReader(strings.TrimSuffix(triggerDump(qualified), "*/;;\nDELIMITER ;\n-- Dump completed\n")[:200]), "pharmacy"))
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a dump ending inside a trigger: err = %v, want truncated", err)
	}
}
