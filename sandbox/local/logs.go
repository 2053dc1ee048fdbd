package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// DefaultLogMaxBytes caps an agent.log when Config.LogMaxBytes is zero.
const DefaultLogMaxBytes = 16 << 20

// minLogMaxBytes keeps one drained chunk within the cap.
const minLogMaxBytes = 64 << 10

func logLimit(n int64) int64 {
	if n <= 0 {
		return DefaultLogMaxBytes
	}
	return max(n, minLogMaxBytes)
}

// drain copies the agent's output pipe into agent.log (logFD), rotating it
// to agent.log.1 in the state directory (stateFD) whenever the next chunk
// would pass limit. It runs in the init stage, outside the agent's
// Landlock domain, on descriptors the agent never holds.
func (s *initStage) drain(r *os.File, limit int64) {
	defer close(s.drained)
	defer r.Close()
	var st unix.Stat_t
	size := int64(0)
	if unix.Fstat(logFD, &st) == nil {
		size = st.Size
	}
	buf := make([]byte, minLogMaxBytes)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			b := buf[:n]
			if size+int64(n) > limit {
				if rotateLog() == nil {
					size = 0
				} else {
					b = nil // the cap holds even when rotation fails
				}
			}
			for len(b) > 0 {
				w, werr := unix.Write(logFD, b)
				if werr != nil {
					if werr == unix.EINTR {
						continue
					}
					break // a full disk loses output, never blocks the agent
				}
				b = b[w:]
			}
			size += int64(len(buf[:n]))
		}
		if err != nil {
			return
		}
	}
}

// rotateLog renames agent.log to agent.log.1 and points logFD at a fresh
// agent.log. Readers that opened the old file keep reading it.
func rotateLog() error {
	if err := unix.Renameat(stateFD, "agent.log", stateFD, "agent.log.1"); err != nil {
		return err
	}
	fd, err := unix.Openat(stateFD, "agent.log", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Dup3(fd, logFD, unix.O_CLOEXEC)
}
