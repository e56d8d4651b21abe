package main

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// auditSeccomp is the kernel's AUDIT_SECCOMP record type (include/uapi/linux/audit.h): the record
// seccomp writes for a call its filter answered with an action that logs (SECCOMP_RET_LOG, and the
// other actions when the filter was loaded with SECCOMP_FILTER_FLAG_LOG).
const auditSeccomp = 1326

// seccompRecord is what the agent needs of one AUDIT_SECCOMP record. The text looks like
//
//	audit(1733600000.123:42): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=1234
//	comm="mkdir" exe="/bin/busybox" sig=0 arch=c000003e syscall=83 compat=0 ip=0x7f0 code=0x7ffc0000
//
// (kernel/auditsc.c, audit_seccomp and audit_log_task). The pid is the task group id in the initial
// pid namespace; arch is the AUDIT_ARCH_* value in hex; code is the filter's SECCOMP_RET_* value.
type seccompRecord struct {
	PID     int
	Arch    uint32
	Syscall int
	Code    uint32
	Comm    string
}

// parseSeccompRecord reads one AUDIT_SECCOMP payload. A record missing pid, arch, syscall or code,
// or with a malformed value, is refused (false): the kernel writes all four, so such a payload is not
// what this reader understands, and the caller counts it instead of guessing.
func parseSeccompRecord(payload []byte) (seccompRecord, bool) {
	var r seccompRecord
	// Skip the "audit(time:serial): " prefix when present.
	if i := bytes.Index(payload, []byte("): ")); i >= 0 && bytes.HasPrefix(payload, []byte("audit(")) {
		payload = payload[i+3:]
	}
	seen := 0
	for len(payload) > 0 {
		var field []byte
		field, payload = nextField(payload)
		eq := bytes.IndexByte(field, '=')
		if eq <= 0 {
			continue
		}
		key, value := string(field[:eq]), field[eq+1:]
		switch key {
		case "pid":
			n, err := strconv.ParseInt(string(value), 10, 32)
			if err != nil || n <= 0 {
				return r, false
			}
			r.PID = int(n)
			seen |= 1
		case "arch":
			n, err := strconv.ParseUint(string(value), 16, 32)
			if err != nil {
				return r, false
			}
			r.Arch = uint32(n)
			seen |= 2
		case "syscall":
			n, err := strconv.ParseInt(string(value), 10, 32)
			if err != nil || n < 0 {
				return r, false
			}
			r.Syscall = int(n)
			seen |= 4
		case "code":
			n, err := strconv.ParseUint(string(bytes.TrimPrefix(value, []byte("0x"))), 16, 32)
			if err != nil {
				return r, false
			}
			r.Code = uint32(n)
			seen |= 8
		case "comm":
			r.Comm = auditString(value)
		}
	}
	return r, seen == 15
}

// nextField splits off one space-separated field; a quoted value may hold spaces.
func nextField(b []byte) (field, rest []byte) {
	b = bytes.TrimLeft(b, " \n\x00")
	inQuote := false
	for i, c := range b {
		switch {
		case c == '"':
			inQuote = !inQuote
		case (c == ' ' || c == '\n' || c == 0) && !inQuote:
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// auditString decodes an audit string value: quoted as is, or hex when it held a space, a quote or a
// control character (audit_log_untrustedstring); "(null)" and undecodable hex read as empty.
func auditString(v []byte) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return string(v[1 : len(v)-1])
	}
	if len(v)%2 != 0 {
		return ""
	}
	out := make([]byte, len(v)/2)
	for i := range out {
		n, err := strconv.ParseUint(string(v[2*i:2*i+2]), 16, 8)
		if err != nil {
			return ""
		}
		out[i] = byte(n)
	}
	return string(out)
}

type netlinkMessage struct {
	kind uint16
	data []byte
}

// netlinkMessages splits a datagram into its messages. The audit subsystem does not pad its messages
// to NLMSG_ALIGNTO (a record of 209 bytes comes as 209 bytes), which syscall.ParseNetlinkMessage
// refuses; so a message whose padding runs past the datagram's end still counts. A header that
// claims more than the datagram holds ends the split.
func netlinkMessages(b []byte) []netlinkMessage {
	const headerLen = 16
	var out []netlinkMessage
	for len(b) >= headerLen {
		length := int(binary.NativeEndian.Uint32(b[0:4]))
		if length < headerLen || length > len(b) {
			break
		}
		out = append(out, netlinkMessage{kind: binary.NativeEndian.Uint16(b[4:6]), data: b[headerLen:length]})
		aligned := (length + 3) &^ 3
		if aligned >= len(b) {
			break
		}
		b = b[aligned:]
	}
	return out
}
