package segment

import "strings"

// Message prefixes rxvault itself writes: the vocabulary of message
// changes (see "Messages" in the package documentation, which specifies
// their contents).
const (
	MsgHeartbeat        = "rxvault.heartbeat"
	MsgSequences        = "rxvault.sequences"
	MsgAutoIncrement    = "rxvault.auto_increment"
	MsgDDLSession       = "rxvault.ddl_session"
	MsgForeignKeyChecks = "rxvault.foreign_key_checks"
)

// MessagesVersion is the version of the message vocabulary this package
// specifies.
const MessagesVersion = 1

// UnknownMessage reports whether prefix is in rxvault's namespace
// ("rxvault.") but not in the vocabulary this package knows: a message a
// newer rxvault wrote, which replay must refuse rather than skip.
func UnknownMessage(prefix string) bool {
	switch prefix {
	case MsgHeartbeat, MsgSequences, MsgAutoIncrement, MsgDDLSession, MsgForeignKeyChecks:
		return false
	}
	return strings.HasPrefix(prefix, "rxvault.")
}
