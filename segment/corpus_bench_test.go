package segment_test

import (
	"github.com/rxvault/rxvault/segment"
	"github.com/rxvault/rxvault/segment/segtest"
)

func init() {
	segment.SetBenchTxns(func() []segment.Txn { return segtest.NewCorpus(42).Txns(30000) })
}
