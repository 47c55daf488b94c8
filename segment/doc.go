// Package segment implements rxvault's segment format: the unit of the
// archive. A segment holds a run of source transactions in commit order,
// compressed, encrypted and chained by hash to the segment before it.
//
// This comment is the normative specification of format version 1.
//
// # Overview
//
//	segment  = preamble header frame* trailer
//	frame    = chunk-frame | last-frame      (exactly one last-frame, at the end)
//
// All integers are big-endian unless stated as uvarint/varint (the
// encoding/binary varints). A segment is written once, in one pass, in
// constant memory; it is read the same way.
//
// # Preamble (12 bytes)
//
//	offset size  field
//	0      6     magic   "RXVSEG"
//	6      1     version 1
//	7      1     flags   0 in version 1; any set bit is rejected
//	8      4     hlen    length of the header body that follows, at most 65536
//
// A reader rejects a version it does not know with ErrUnknownVersion before
// it reads anything else.
//
// # Header body (hlen bytes)
//
//	size   field
//	1      engine        1 postgres, 2 mysql, 3 mariadb, 4 sqlserver
//	1+n    source id     length byte, then 1..255 bytes of UTF-8: the
//	                     source's identity (PostgreSQL system identifier,
//	                     MySQL/MariaDB server uuid or server id, ...)
//	16     chain id      random; a chain is one unbroken run of the stream
//	8      sequence      1 for the first segment of a chain, then +1 each
//	16     first pos     commit position of the first transaction
//	16     last pos      commit position of the last transaction
//	16     end pos       the stream is complete up to here (see below)
//	8      first commit  earliest commit time, µs since 1970-01-01 UTC
//	8      last commit   latest commit time, µs
//	8      end time      the stream is complete up to this source time, µs
//	8      txn count     transactions in the segment
//	8      record count  changes in the segment (rows, truncates, DDL, messages)
//	32     prev hash     digest of the previous segment of the chain; all
//	                     zero if and only if sequence is 1
//	1      compression   1 zstd
//	1      payload       1 transaction records version 1 (below);
//	                     2 an opaque byte stream (base backup parts), with
//	                     txn and record counts, first/last pos and commit 0
//	4      chunk size    maximum plaintext bytes per chunk, 4096..16 MiB
//	16     salt          random, unique to the segment
//	1      envelopes     count, 1..16, then for each:
//	  8      key id      see internal/keys
//	  2      length      1..4096
//	  n      wrapped     HPKE(MLKEM768P256, HKDF-SHA256, AES-256-GCM)
//	                     single-shot seal of the 32-byte data key, with info
//	                     "rxvault-seg-v1 data key" || salt
//
// No bytes may follow the last envelope inside hlen. A position is 16 bytes:
// two uint64, compared as the pair (hi, lo); see Position for each engine's
// mapping. A time of 0 means "none"; first/last pos and commit are zero if
// and only if the txn count is zero. Positions strictly increase from one
// transaction to the next within a segment. first commit and last commit
// are the minimum and maximum commit times (commit times need not be
// monotonic in commit order).
//
// End pos and end time state completeness: every transaction the source
// committed at or before end pos (end time) is in this segment or an
// earlier one of the same chain. They let a segment with no transactions
// record that an idle source was archived up to a point. When there are
// transactions, end pos >= last pos and end time >= last commit.
//
// # Frames
//
//	chunk-frame = 'C' len:uint32 sealed[len]
//	last-frame  = 'L' len:uint32 sealed[len]
//
// The payload (below) is a byte stream cut into pieces of exactly chunk size
// bytes, except the last, which has 0..chunk size bytes. Piece i (counted
// from 0) is compressed into one zstd frame and sealed with AES-256-GCM
// under the segment's data key:
//
//	nonce(i) = salt[0:4] || uint64(i)
//	aad(i)   = "rxvault-seg-v1" || SHA-256(preamble || header body) || uint64(i) || last
//	sealed   = AES-256-GCM-Seal(data key, nonce(i), zstd(piece i), aad(i))
//
// where last is one byte, 1 for the last frame and 0 otherwise. The data
// key is fresh for every segment, so nonces never repeat under a key. The
// aad binds each chunk to its header, its index and whether it ends the
// segment, so a header edit, a reordered, dropped or repeated chunk, a chunk
// moved in from another segment, and a truncation at any chunk boundary all
// fail authentication or the frame structure. len is at most
// chunk size + chunk size/64 + 1024 + 16.
//
// # Trailer (45 bytes)
//
//	1      'T'
//	8      chunk count   number of frames
//	32     digest        SHA-256 of every byte of the segment before this field
//	4      end magic     "RXVE"
//
// The digest is the segment's identity in its chain: the next segment's prev
// hash. It covers stored (encrypted) bytes, so structure, hashes and chain
// can all be verified without a private key; reading the payload needs an
// identity matching one envelope.
//
// # Payload: transaction records, version 1
//
//	record = kind:uint8 len:uvarint body[len]
//
// A string or byte field inside a body is uvarint length then bytes. kinds:
//
//	1 relation  relid:uvarint schema table ncols:uvarint
//	            { name type typeid:uvarint flags:uint8 }*ncols
//	            flags: bit 0 key column, bit 1 generated column
//	2 begin     txid pos.hi:uvarint pos.lo:uvarint commit:varint(µs)
//	3 change    op:uint8, then by op:
//	            1 insert    relid new-tuple
//	            2 update    relid old-kind:uint8 [old-tuple] new-tuple
//	            3 delete    relid old-kind:uint8 old-tuple
//	            4 truncate  flags:uint8 n:uvarint relid*n
//	                        flags: bit 0 cascade, bit 1 restart identity
//	            5 ddl       schema sql
//	            6 message   flags:uint8 prefix content
//	                        flags: bit 0 transactional
//	            old-kind: 0 none (update only), 1 key columns, 2 full old row
//	4 commit    changes:uvarint (the number of change records since begin)
//
//	tuple = ncols:uvarint value*ncols        (ncols equals the relation's)
//	value = 0 null | 1 text bytes | 2 binary bytes | 3 unchanged
//
// Relation ids are local to a segment: a relation record defines an id
// before any change uses it, and each id is defined once. Text values are
// the engine's exact text form of the value; binary values are raw bytes
// (bytea, BLOB); unchanged marks a value the source did not send because it
// did not change (PostgreSQL's unchanged TOAST), which replay must leave as
// it is. Changes occur only between a begin and its commit; begins and
// commits alternate; a segment ends outside any transaction. A record is at
// most MaxRecordSize bytes; unknown kinds, ops or flag bits are corrupt.
//
// # Messages, vocabulary version 1
//
// A message change's prefix says who wrote it. Prefixes starting with
// "rxvault." are rxvault's own (the constants Msg*); their contents below
// are part of the format, and changing one is a new vocabulary version. A
// reader that meets an rxvault prefix it does not know must refuse the
// segment's transaction rather than skip it; other prefixes (a source
// application's own logical messages) carry nothing replay acts on.
//
//	rxvault.heartbeat           empty; a transaction that changes nothing
//	                            but gives the archive a recent commit time
//	rxvault.sequences           PostgreSQL: JSON {"schema.name":
//	                            {"last_value": "42", "is_called": true}, ...},
//	                            every captured sequence
//	rxvault.auto_increment      MySQL, MariaDB: JSON {"table": "42", ...},
//	                            the next AUTO_INCREMENT value of every table
//	rxvault.ddl_session         just before a ddl change: the session
//	                            settings it ran with (below)
//	rxvault.foreign_key_checks  MySQL, MariaDB: "0" or "1", before row changes
//	                            written with other foreign_key_checks than the
//	                            ones before them (each transaction starts on)
//
// rxvault.ddl_session on PostgreSQL: {"settings": {"TimeZone":
// "Asia/Kathmandu", "DateStyle": "SQL, DMY", ...}}, the session's value of
// each setting that changes what DDL computes (TimeZone, DateStyle,
// IntervalStyle, extra_float_digits, bytea_output,
// standard_conforming_strings, backslash_quote, xmloption,
// transform_null_equals, array_nulls, timezone_abbreviations,
// default_text_search_config); archives written
// before rxvault recorded them have none. On MySQL and MariaDB:
// {"sql_mode": "1411383296", "time_zone": "+05:00", "system_offset":
// "+01:00", "timestamp": "1796000000.123456", "charset": [33, 33, 8],
// "no_foreign_key_checks": true, "other_databases": true,
// "explicit_defaults_for_timestamp": true}: sql_mode's bits in decimal; no
// time_zone: the server's default; for SYSTEM, the source host zone's
// offset then; the session clock; character_set_client,
// collation_connection and collation_server as collation ids;
// foreign_key_checks=0; that the statement also changes objects of
// databases other than the captured one; and the session's
// explicit_defaults_for_timestamp when the binlog records it.
//
// # Object names
//
// ObjectName gives a segment's name in a store, encoding chain, sequence,
// positions and times so that a listing is an index; it is never trusted
// over the header, which readers compare with it.
//
// # Errors
//
// Readers distinguish ErrTruncated (the bytes end early), ErrCorrupt (the
// bytes are wrong: bad structure, digest, authentication or records),
// ErrWrongKey (no identity matches an envelope), ErrUnknownVersion and
// ErrBrokenChain (the segment does not follow its predecessor).
package segment
