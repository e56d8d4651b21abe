package main

import (
	"encoding/binary"
	"testing"
)

// A record as kernel 6.18 wrote it on the development machine (captured from the multicast group).
const captured = `audit(1796682163.487:293688): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=6360 comm="log-storm" exe="/tmp/w27n/log-storm" sig=0 arch=c000003e syscall=110 compat=0 ip=0x408bce code=0x7ffc0000`

func TestParseSeccompRecord(t *testing.T) {
	r, ok := parseSeccompRecord([]byte(captured))
	if !ok {
		t.Fatal("refused a record the kernel wrote")
	}
	want := seccompRecord{PID: 6360, Arch: 0xc000003e, Syscall: 110, Code: 0x7ffc0000, Comm: "log-storm"}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

func TestParseSeccompRecordWithLSMContextAndHexComm(t *testing.T) {
	// An AppArmor host adds subj=; a comm holding a space is written in hex (audit_log_untrustedstring).
	text := `audit(1.2:3): auid=1000 uid=0 gid=0 ses=2 subj=cri-containerd.apparmor.d (enforce) pid=99 comm=6D7920617070 exe="/app" sig=0 arch=c00000b7 syscall=34 compat=0 ip=0xffff code=0x50001`
	r, ok := parseSeccompRecord([]byte(text))
	if !ok || r.PID != 99 || r.Arch != 0xc00000b7 || r.Syscall != 34 || r.Code != 0x50001 || r.Comm != "my app" {
		t.Fatalf("got %+v, %v", r, ok)
	}
}

func TestParseSeccompRecordRefusesIncompleteOrMalformed(t *testing.T) {
	for _, text := range []string{
		"",
		`audit(1.2:3): pid=1 arch=c000003e syscall=1`,
		`audit(1.2:3): pid=x arch=c000003e syscall=1 code=0x7ffc0000`,
		`audit(1.2:3): pid=1 arch=zz syscall=1 code=0x7ffc0000`,
		`audit(1.2:3): pid=1 arch=c000003e syscall=-1 code=0x7ffc0000`,
		`audit(1.2:3): pid=1 arch=c000003e syscall=1 code=0xfffffffff`,
	} {
		if r, ok := parseSeccompRecord([]byte(text)); ok {
			t.Errorf("accepted %q as %+v", text, r)
		}
	}
}

func message(kind uint16, payload string) []byte {
	b := make([]byte, 16+len(payload))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], kind)
	copy(b[16:], payload)
	return b
}

func TestNetlinkMessagesTakesUnpaddedAuditMessages(t *testing.T) {
	one := message(auditSeccomp, captured) // 16 + 193 bytes: not a multiple of 4
	got := netlinkMessages(one)
	if len(got) != 1 || got[0].kind != auditSeccomp || string(got[0].data) != captured {
		t.Fatalf("got %+v", got)
	}
	padded := append(message(1300, "abc"), 0) // 19 bytes padded to 20
	two := netlinkMessages(append(padded, one...))
	if len(two) != 2 || two[0].kind != 1300 || string(two[0].data) != "abc" || two[1].kind != auditSeccomp {
		t.Fatalf("got %+v", two)
	}
	broken := message(auditSeccomp, "x")
	binary.NativeEndian.PutUint32(broken[0:4], 1000)
	if got := netlinkMessages(broken); len(got) != 0 {
		t.Fatalf("a header longer than its datagram gave %+v", got)
	}
}
