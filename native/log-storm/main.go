// log-storm: the load of docs/adr/0038's measurements and bench/ suite "audit". One OS thread puts
// itself under a seccomp filter that answers every call with SECCOMP_RET_LOG (so every call it makes
// writes an AUDIT_SECCOMP record) and calls getppid(2) as fast as it can for -duration; it prints how
// many calls it made, which is how many records the kernel produced. With -filter=false it makes the
// same calls unfiltered: the workload's own throughput, for comparison.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func logEverything() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_LOG}}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// No SECCOMP_FILTER_FLAG_TSYNC: only this (locked) thread is filtered, not the Go runtime's others.
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return errno
	}
	return nil
}

func main() {
	duration := flag.Duration("duration", 60*time.Second, "how long to make calls")
	filter := flag.Bool("filter", true, "log every call (false: the same calls, unfiltered)")
	flag.Parse()
	runtime.LockOSThread()
	if *filter {
		if err := logEverything(); err != nil {
			fmt.Fprintln(os.Stderr, "log-storm: seccomp:", err)
			os.Exit(1)
		}
	}
	start := time.Now()
	deadline := start.Add(*duration)
	var calls uint64
	// time.Now reads the vDSO clock, which makes no system call and so no record.
	for time.Now().Before(deadline) {
		for range 256 {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		calls += 256
	}
	seconds := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{"calls": calls, "seconds": seconds, "pid": os.Getpid(), "filtered": *filter})
	// This write is itself logged when filtered (one record), which a reader must not count as a call.
	fmt.Println(string(out))
}
