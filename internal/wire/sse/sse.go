package sse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// Event is one server-sent event. Event is empty for unnamed events
// (OpenAI), set for named ones (Anthropic).
type Event struct {
	Event string
	Data  []byte
}

// Writer writes events to an HTTP response and flushes after each one, so
// a client sees every token as soon as the gateway has it.
type Writer struct {
	w   io.Writer
	f   http.Flusher
	buf []byte
}

// NewWriter returns a Writer on w, flushing through w's http.Flusher when
// it has one.
func NewWriter(w io.Writer) *Writer {
	f, _ := w.(http.Flusher)
	return &Writer{w: w, f: f}
}

// Write sends one event and flushes it.
func (s *Writer) Write(event string, data []byte) error {
	b := s.buf[:0]
	if event != "" {
		b = append(b, "event: "...)
		b = append(b, event...)
		b = append(b, '\n')
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	if s.f != nil {
		s.f.Flush()
	}
	return nil
}

// Reader reads events from a stream.
type Reader struct {
	sc *bufio.Scanner
}

// maxEventSize bounds one event line; providers send small deltas, but a
// tool call's arguments may arrive in one piece.
const maxEventSize = 8 << 20

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), maxEventSize)
	return &Reader{sc: sc}
}

// Next returns the next event, or io.EOF at the end of the stream.
// Comments and fields other than event and data are skipped.
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data []byte
	have := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			if have {
				ev.Data = data
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Event = string(value)
			have = true
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
			if data == nil {
				data = []byte{}
			}
			have = true
		}
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("read event stream: %w", err)
	}
	if have {
		ev.Data = data
		return ev, nil
	}
	return Event{}, io.EOF
}
