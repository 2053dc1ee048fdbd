package daemon

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"sync"

	"github.com/nemoclave/nemoclave/version"
)

var buildID = sync.OnceValue(readBuildID)

// BuildID is the Go build id of the running binary (from its
// .note.go.buildid ELF note): every rebuild with different inputs changes
// it, so a CLI can tell a daemon started by an older build of the same
// version apart. Empty when the note cannot be read.
func BuildID() string { return buildID() }

func readBuildID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	f, err := elf.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		return ""
	}
	// An ELF note: namesz, descsz, type, then name "Go\0\0" and the id.
	namesz := binary.LittleEndian.Uint32(b[0:4])
	descsz := binary.LittleEndian.Uint32(b[4:8])
	off := 12 + (namesz+3)&^3
	if namesz != 4 || !bytes.Equal(b[12:15], []byte("Go\x00")) || int(off+descsz) > len(b) {
		return ""
	}
	return string(b[off : off+descsz])
}

// VersionString is "<version> (build <id>)", what `nemoclave version` and
// mismatch messages show.
func VersionString(v, id string) string {
	if id == "" {
		id = "unknown"
	}
	if len(id) > 24 {
		// The full id is four slash-separated hashes; the last (the
		// content hash of the binary) is what differs between builds.
		if i := bytes.LastIndexByte([]byte(id), '/'); i >= 0 {
			id = id[i+1:]
		}
	}
	return v + " (build " + id + ")"
}

// Self is this binary's VersionString.
func Self() string { return VersionString(version.Version, BuildID()) }
