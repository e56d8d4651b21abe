// audit-reader: the Lockstep agent's window on seccomp's audit records (docs/adr/0038).
//
// It binds a NETLINK_AUDIT socket to the kernel's read-only multicast group (AUDIT_NLGRP_READLOG;
// needs CAP_AUDIT_READ, the initial network namespace and, to name a process's cgroup, the host's
// /proc), keeps the AUDIT_SECCOMP records, counts them per (pid, arch, syscall, action) and writes one
// JSON line per key every flush interval on stdout:
//
//	{"pid":1234,"arch":3221225534,"syscall":83,"code":2147221504,"count":7,"comm":"mkdir","cgroup":"0::/kubepods/..."}
//
// and a line of its own counters every second they change (and once bound, and at exit):
//
//	{"stats":{"records":N,"lines":N,"overruns":N,"unparsed":N,"rcvbuf":N}}
//
// overruns counts ENOBUFS: the kernel found the socket's buffer full and dropped records for it.
// Node.js cannot open a netlink socket; everything else (which pod, which syscall name, metrics,
// Events) is the agent's, in TypeScript. Standard library and golang.org/x/sys/unix only.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// auditNlgrpReadlog is AUDIT_NLGRP_READLOG (include/uapi/linux/audit.h), the read-only multicast group;
// a socket joins it through the bind's group bitmask, where group n is bit n-1.
const auditNlgrpReadlog = 1

type key struct {
	pid, syscall int
	arch, code   uint32
}

type tally struct {
	count  uint64
	comm   string
	cgroup string
}

type line struct {
	PID     int    `json:"pid"`
	Arch    uint32 `json:"arch"`
	Syscall int    `json:"syscall"`
	Code    uint32 `json:"code"`
	Count   uint64 `json:"count"`
	Comm    string `json:"comm,omitempty"`
	Cgroup  string `json:"cgroup,omitempty"`
}

type stats struct {
	Records  uint64 `json:"records"`
	Lines    uint64 `json:"lines"`
	Overruns uint64 `json:"overruns"`
	Unparsed uint64 `json:"unparsed"`
	// Unwritten: records of new keys dropped because the agent was not reading and maxKeys were held.
	Unwritten uint64 `json:"unwritten"`
	Rcvbuf    int    `json:"rcvbuf"`
}

// maxCgroupBytes bounds what is read of /proc/<pid>/cgroup (cgroup v2 has one line; v1 a dozen).
const maxCgroupBytes = 4096

func main() {
	rcvbuf := flag.Int("rcvbuf", 64<<20, "socket receive buffer in bytes (SO_RCVBUFFORCE, else SO_RCVBUF capped by net.core.rmem_max)")
	flush := flag.Duration("flush", 200*time.Millisecond, "how often the counts are written")
	maxKeys := flag.Int("max-keys", 4096, "distinct (pid, arch, syscall, action) keys held before an early flush")
	procRoot := flag.String("proc", "/proc", "the host's /proc, to read a process's cgroup")
	flag.Parse()
	if err := run(*rcvbuf, *flush, *maxKeys, *procRoot); err != nil {
		fmt.Fprintln(os.Stderr, "audit-reader:", err)
		os.Exit(1)
	}
}

func openSocket(rcvbuf int) (int, int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return -1, 0, fmt.Errorf("netlink audit socket: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (auditNlgrpReadlog - 1)}); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("join the audit read-only multicast group (needs CAP_AUDIT_READ in the initial user and network namespaces): %w", err)
	}
	// A timeout lets the loop flush and notice SIGTERM while the kernel is quiet.
	tv := unix.Timeval{Usec: 50_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		got = 0
	}
	return fd, got, nil
}

func run(rcvbuf int, flush time.Duration, maxKeys int, procRoot string) error {
	fd, effective, err := openSocket(rcvbuf)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var stopping atomic.Bool
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-signals; stopping.Store(true) }()

	// The writer runs apart from the receiving loop: an agent slow to read (its event loop busy) must
	// not stop the loop, or the kernel would drop records for it. While the writer is busy, records
	// go on being counted into the keys held; new keys past maxKeys are counted in Unwritten.
	batches := make(chan []any, 1)
	writerDone := make(chan struct{})
	go func() {
		out := bufio.NewWriterSize(os.Stdout, 64<<10)
		enc := json.NewEncoder(out)
		for batch := range batches {
			for _, item := range batch {
				if err := enc.Encode(item); err != nil {
					fmt.Fprintln(os.Stderr, "audit-reader: write:", err)
					os.Exit(1)
				}
			}
			if err := out.Flush(); err != nil {
				fmt.Fprintln(os.Stderr, "audit-reader: write:", err)
				os.Exit(1)
			}
		}
		close(writerDone)
	}()
	st := stats{Rcvbuf: effective}
	reported := st
	counts := make(map[key]*tally)
	// send hands the counts (and the stats when they changed) to the writer; wait says whether to
	// wait for it, else a busy writer leaves everything held for the next try.
	send := func(withStats, wait bool) bool {
		batch := make([]any, 0, len(counts)+1)
		for k, t := range counts {
			batch = append(batch, line{k.pid, k.arch, k.syscall, k.code, t.count, t.comm, t.cgroup})
		}
		next := st
		next.Lines += uint64(len(counts))
		if withStats {
			batch = append(batch, map[string]stats{"stats": next})
		}
		if len(batch) == 0 {
			return true
		}
		if wait {
			batches <- batch
		} else {
			select {
			case batches <- batch:
			default:
				return false
			}
		}
		st = next
		if withStats {
			reported = st
		}
		clear(counts)
		return true
	}
	send(true, true)
	buf := make([]byte, 1<<16)
	nextFlush := time.Now().Add(flush)
	nextStats := time.Now().Add(time.Second)
	for !stopping.Load() {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			st.Overruns++
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		case err != nil:
			return fmt.Errorf("receive: %w", err)
		default:
			for _, m := range netlinkMessages(buf[:n]) {
				if m.kind != auditSeccomp {
					continue
				}
				r, ok := parseSeccompRecord(m.data)
				if !ok {
					st.Unparsed++
					continue
				}
				st.Records++
				k := key{r.PID, r.Syscall, r.Arch, r.Code}
				t := counts[k]
				if t == nil {
					if len(counts) >= maxKeys && !send(false, false) {
						st.Unwritten++
						continue
					}
					// Read now, while the process most likely still exists: a short-lived one is gone
					// by the time the agent could look.
					t = &tally{comm: r.Comm, cgroup: readCgroup(procRoot, r.PID)}
					counts[k] = t
				}
				t.count++
			}
		}
		now := time.Now()
		if now.After(nextFlush) {
			statsDue := now.After(nextStats) && st != reported
			if send(statsDue, false) {
				nextFlush = now.Add(flush)
				if statsDue {
					nextStats = now.Add(time.Second)
				}
			}
		}
	}
	send(true, true)
	close(batches)
	<-writerDone
	return nil
}

func readCgroup(procRoot string, pid int) string {
	f, err := os.Open(procRoot + "/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, maxCgroupBytes)
	n, _ := f.Read(b)
	return string(b[:n])
}
