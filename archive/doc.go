// Package archive defines how rxvault lays out a source's archive in a
// store, and reads a store's listing back into an index of chains,
// segments and base backups.
//
// # Layout
//
// Every object of a source lives under the source's directory,
// SourceDir(engine, source id), for example postgres-7441234567890123456-pharmacy:
//
//	sources/<src>.json                       the source's registration (write-once)
//	<src>/chains/<chain>.json                 a chain's start marker (ChainMarker)
//	<src>/wal/<chain>/<segment name>          the chain's segments, named by
//	                                          segment.NameInfo.ObjectName
//	<src>/base/<backup>/<segment name>        a base backup's parts: byte-stream
//	                                          segments chained like a WAL chain,
//	                                          with the backup id as chain id
//	<src>/base/<backup>/manifest.json         the backup's manifest, written last
//
// A chain is one unbroken run of the source's change stream: it starts when
// rxvault creates its replication slot (or finds the stream lost) and its
// segments follow each other by sequence number and hash. Chain and backup
// ids are 16 bytes: 8 bytes of creation time (Unix nanoseconds, big endian)
// then 8 random bytes, so their hex sorts by creation.
//
// Nothing is ever rewritten: markers, segments, parts and manifests are
// each written once. A backup without a manifest is incomplete (its writer
// died) and is never used. The JSON documents hold no row data.
package archive
