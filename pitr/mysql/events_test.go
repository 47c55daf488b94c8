package mysql

import (
	"cmp"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The events section as mariadb-dump 10.11 writes it (one event).
const dumpEvents = `/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;
/*!50106 DROP EVENT IF EXISTS ` + "`e1`" + ` */;
DELIMITER ;;
/*!50003 SET @saved_time_zone      = @@time_zone */ ;;
/*!50003 SET time_zone             = '+05:00' */ ;;
/*!50106 CREATE*/ /*!50117 DEFINER=` + "`root`@`localhost`" + `*/ /*!50106 EVENT ` + "`e1`" + ` ON SCHEDULE EVERY 1 SECOND STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO UPDATE t SET v = v + 1 
*/ ;;
/*!50003 SET time_zone             = @saved_time_zone */ ;;
DELIMITER ;
/*!50106 SET TIME_ZONE= @save_time_zone */ ;
`

func dump(events string, long string) string {
	return "-- MariaDB dump 10.19\n--\n-- Dumping data for table `t`\n--\n" +
		"INSERT INTO `t` VALUES (1,'" + long + "');\n" +
		"\n--\n-- Dumping events for database 'p'\n--\n" + events +
		"\n--\n-- Dumping routines for database 'p'\n--\n" +
		"DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE `pr`()\nSELECT 1\n;;\nDELIMITER ;\n-- Dump completed\n"
}

// TestEventsFilter checks that the events section, and only it, is taken
// out of the dump and kept whole, with and without events, with lines
// longer than the filter's buffer, read a byte at a time or at once.
func TestEventsFilter(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	for _, tc := range []struct {
		name, events string
	}{
		{"events", dumpEvents},
		{"no events", ""},
		{"long event body", strings.Replace(dumpEvents, "v = v + 1", "v = '"+long+"'", 1)},
	} {
		for _, slow := range []bool{false, true} {
			in := dump(tc.events, long)
			var r io.Reader = strings.NewReader(in)
			if slow {
				r = iotest.OneByteReader(r)
			}
			f := newEventsFilter(r)
			out, err := io.ReadAll(iotest.HalfReader(f))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if want := dump("", long); string(out) != want {
				t.Errorf("%s (slow %v): filtered dump differs from the dump without its events (%d bytes, want %d)", tc.name, slow, len(out), len(want))
			}
			if got := string(f.section()); got != tc.events {
				t.Errorf("%s (slow %v): kept section %q, want %q", tc.name, slow, got[:min(len(got), 200)], tc.events[:min(len(tc.events), 200)])
			}
		}
	}
}

// TestUnnameDatabase checks that the dump's ALTER DATABASE lines around
// a trigger, routine or event lose the source database's name, in the
// dump and in the events section, and that nothing else changes.
func TestUnnameDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ALTER DATABASE `pharmacy` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci ;\n", "ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci ;\n"},
		{"ALTER DATABASE `a``b c` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;\n", "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;\n"},
		{"ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n", ""},
		{"ALTER DATABASE `p` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ;", ""}, // not a whole line
		{"ALTER DATABASE `p` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ; DROP TABLE t;\n", ""},
		{"INSERT INTO `t` VALUES (1,'ALTER DATABASE `p` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ;');\n", ""},
	} {
		want := cmp.Or(tc.want, tc.in)
		if got := string(unnameDatabase([]byte(tc.in))); got != want {
			t.Errorf("unnameDatabase(%q) = %q, want %q", tc.in, got, want)
		}
	}
	alter := "ALTER DATABASE `p` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;\n"
	unnamed := "ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;\n"
	events := strings.Replace(dumpEvents, "DELIMITER ;;\n", alter+"DELIMITER ;;\n", 1)
	in := alter + dump(events, "a")
	f := newEventsFilter(iotest.OneByteReader(strings.NewReader(in)))
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := unnamed + dump("", "a"); string(out) != want {
		t.Errorf("filtered dump:\n%s\nwant:\n%s", out, want)
	}
	if got, want := string(f.section()), strings.Replace(events, alter, unnamed, 1); got != want {
		t.Errorf("events section:\n%s\nwant:\n%s", got, want)
	}
}

// TestEventsFilterTruncated refuses a dump that ends inside the section.
func TestEventsFilterTruncated(t *testing.T) {
	in := dump(dumpEvents, "a")
	in = in[:strings.Index(in, "DELIMITER ;\n/*!50106 SET TIME_ZONE")]
	if _, err := io.ReadAll(newEventsFilter(strings.NewReader(in))); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v, want a truncated events section", err)
	}
}

func TestIsEventDDL(t *testing.T) {
	for q, want := range map[string]bool{
		"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t":                             true,
		"CREATE DEFINER=`root`@`localhost` EVENT `e` ON SCHEDULE AT '2030-01-01' DO SELECT 1": true,
		"create or replace event e on schedule every 1 hour do select 1":                      true,
		"ALTER EVENT e DISABLE":                            true,
		"  DROP EVENT IF EXISTS e":                         true,
		"ALTER DEFINER = CURRENT_USER EVENT e RENAME TO f": true,
		"CREATE TABLE event (id int)":                      false,
		"CREATE TABLE `event` (id int)":                    false,
		"DROP TABLE events":                                false,
		"ALTER TABLE t ADD COLUMN event int":               false,
	} {
		if got := isEventDDL(q); got != want {
			t.Errorf("isEventDDL(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestDatabaseStmt(t *testing.T) {
	for _, tc := range []struct {
		q, verb, options string
		ok               bool
	}{
		{"DROP DATABASE pharmacy", "DROP", "", true},
		{"drop schema if exists `pharmacy`", "DROP", "", true},
		{"CREATE DATABASE IF NOT EXISTS pharmacy", "CREATE", "", true},
		{"ALTER DATABASE pharmacy CHARACTER SET utf8mb4", "ALTER", "CHARACTER SET utf8mb4", true},
		{"ALTER DATABASE `phar``macy`\n\tCOLLATE = utf8mb4_bin", "ALTER", "COLLATE = utf8mb4_bin", true},
		{"ALTER SCHEMA DEFAULT CHARACTER SET latin1", "ALTER", "DEFAULT CHARACTER SET latin1", true},
		{"ALTER DATABASE CHARSET=latin1", "ALTER", "CHARSET=latin1", true},
		{"ALTER DATABASE COMMENT 'x'", "ALTER", "COMMENT 'x'", true},
		{"ALTER TABLE databases ADD COLUMN x INT", "", "", false},
		{"CREATE TABLE `database` (id INT)", "", "", false},
	} {
		verb, rest, ok := databaseStmt(tc.q)
		if ok != tc.ok || verb != tc.verb {
			t.Errorf("databaseStmt(%q) = %q, %v; want %q, %v", tc.q, verb, ok, tc.verb, tc.ok)
			continue
		}
		if ok && verb == "ALTER" {
			if got := alterDatabaseOptions(rest); got != tc.options {
				t.Errorf("alterDatabaseOptions of %q = %q, want %q", tc.q, got, tc.options)
			}
		}
	}
}
