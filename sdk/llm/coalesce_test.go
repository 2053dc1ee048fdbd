package llm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/llmv1"
)

// gatedSend is a stream whose Send blocks until the test releases it, so
// what the provider adds meanwhile is deterministically waiting.
type gatedSend struct {
	got     chan *pb.ForwardChunk
	release chan error
}

func newGatedSend() *gatedSend {
	return &gatedSend{got: make(chan *pb.ForwardChunk, 100), release: make(chan error)}
}

func (g *gatedSend) send(m *pb.ForwardChunk) error {
	g.got <- m
	return <-g.release
}

func TestCoalescerMergesWaitingChunks(t *testing.T) {
	g := newGatedSend()
	c := newForwardCoalescer(g.send)
	buf := []byte("xxxx")
	if err := c.add(&ForwardChunk{Status: 200, Headers: map[string]string{"content-type": "text/event-stream"}}); err != nil {
		t.Fatal(err)
	}
	first := <-g.got // on its way, held by the gate
	var want bytes.Buffer
	for i := range 100 {
		// The provider reuses its buffer after each send, as it may.
		copy(buf, fmt.Sprintf("e%03d", i))
		want.Write(buf)
		if err := c.add(&ForwardChunk{Data: buf}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- c.close() }()
	g.release <- nil
	second := <-g.got
	g.release <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if first.Status != 200 || first.Headers["content-type"] != "text/event-stream" || len(first.Data) != 0 {
		t.Errorf("first message = %v, want the status and headers alone", first)
	}
	if second.Status != 0 || !bytes.Equal(second.Data, want.Bytes()) {
		t.Errorf("second message = status %d, %q; want the 100 waiting chunks in order: %q", second.Status, second.Data, want.Bytes())
	}
	if len(g.got) != 0 {
		t.Errorf("%d more messages, want 2 in all", len(g.got))
	}
}

// A second status (a provider that sends one again) is not merged into
// the data before it, which would move it.
func TestCoalescerKeepsLaterStatusSeparate(t *testing.T) {
	var got []*pb.ForwardChunk
	c := newForwardCoalescer(func(m *pb.ForwardChunk) error { got = append(got, m); return nil })
	for _, ch := range []*ForwardChunk{{Status: 200}, {Data: []byte("a")}, {Status: 201, Data: []byte("b")}, {Data: []byte("c")}} {
		if err := c.add(ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	var statuses []int32
	var data []byte
	for _, m := range got {
		if m.Status != 0 {
			statuses = append(statuses, m.Status)
		}
		data = append(data, m.Data...)
	}
	if fmt.Sprint(statuses) != "[200 201]" || string(data) != "abc" {
		t.Errorf("statuses %v, data %q; want [200 201] and abc", statuses, data)
	}
	for i, m := range got {
		if m.Status == 201 && (i == 0 || !bytes.Contains(append(got[i-1].Data, m.Data...), []byte("ab"))) {
			t.Errorf("status 201 arrived out of place: %v", got)
		}
	}
}

// A failed send ends the stream: the provider's next add returns the
// error (so it stops reading its upstream) and close reports it.
func TestCoalescerSendErrorStopsProvider(t *testing.T) {
	boom := errors.New("host went away")
	g := newGatedSend()
	c := newForwardCoalescer(g.send)
	if err := c.add(&ForwardChunk{Status: 200}); err != nil {
		t.Fatal(err)
	}
	<-g.got
	g.release <- boom
	if err := c.close(); !errors.Is(err, boom) {
		t.Fatalf("close = %v, want %v", err, boom)
	}
	if err := c.add(&ForwardChunk{Data: []byte("late")}); !errors.Is(err, boom) {
		t.Fatalf("add after a failed send = %v, want %v", err, boom)
	}
}

// A provider faster than the host waits once coalesceMax bytes wait,
// instead of buffering without bound; nothing is lost.
func TestCoalescerBoundsWaitingBytes(t *testing.T) {
	g := newGatedSend()
	c := newForwardCoalescer(g.send)
	big := bytes.Repeat([]byte("z"), coalesceMax)
	if err := c.add(&ForwardChunk{Status: 200}); err != nil {
		t.Fatal(err)
	}
	<-g.got // the status, held: big waits, the tail must wait for it to leave
	added := make(chan error, 3)
	go func() {
		for _, ch := range []*ForwardChunk{{Data: big}, {Data: []byte("tail")}} {
			if err := c.add(ch); err != nil {
				added <- err
				return
			}
		}
		added <- nil
	}()
	g.release <- nil
	m := <-g.got
	g.release <- nil
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- c.close() }()
	var rest []byte
	for len(m.Data)+len(rest) < coalesceMax+4 {
		n := <-g.got
		rest = append(rest, n.Data...)
		g.release <- nil
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(m.Data) != coalesceMax || string(rest) != "tail" {
		t.Errorf("sent %d bytes then %q, want the %d waiting bytes then the tail on its own", len(m.Data), rest, coalesceMax)
	}
}
