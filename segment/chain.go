package segment

import "fmt"

// CheckLink reports whether next directly follows prev in a chain: same
// source and chain, the next sequence number, and a prev hash equal to
// prev's digest. Failures wrap ErrBrokenChain. Positions may overlap (a
// restarted agent re-sends what it had not yet acknowledged); replay drops
// transactions at or before the position already applied.
func CheckLink(prev *Header, prevDigest Digest, next *Header) error {
	switch {
	case next.Engine != prev.Engine || next.SourceID != prev.SourceID:
		return fmt.Errorf("%w: segment %d of chain %s comes from source %s/%s, its predecessor from %s/%s",
			ErrBrokenChain, next.Seq, next.Chain, next.Engine, next.SourceID, prev.Engine, prev.SourceID)
	case next.Chain != prev.Chain:
		return fmt.Errorf("%w: segment %d belongs to chain %s, its predecessor to %s", ErrBrokenChain, next.Seq, next.Chain, prev.Chain)
	case next.Seq != prev.Seq+1:
		return fmt.Errorf("%w: chain %s jumps from segment %d to %d", ErrBrokenChain, next.Chain, prev.Seq, next.Seq)
	case next.PrevHash != prevDigest:
		return fmt.Errorf("%w: chain %s segment %d names predecessor %s, but segment %d has digest %s",
			ErrBrokenChain, next.Chain, next.Seq, next.PrevHash, prev.Seq, prevDigest)
	}
	return nil
}
