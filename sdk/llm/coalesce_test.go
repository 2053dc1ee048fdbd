package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

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
	if err := c.add(forwardPB(&ForwardChunk{Status: 200, Headers: map[string]string{"content-type": "text/event-stream"}})); err != nil {
		t.Fatal(err)
	}
	first := <-g.got // on its way, held by the gate
	var want bytes.Buffer
	for i := range 100 {
		// The provider reuses its buffer after each send, as it may.
		copy(buf, fmt.Sprintf("e%03d", i))
		want.Write(buf)
		if err := c.add(forwardPB(&ForwardChunk{Data: buf})); err != nil {
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
		if err := c.add(forwardPB(ch)); err != nil {
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
	if err := c.add(forwardPB(&ForwardChunk{Status: 200})); err != nil {
		t.Fatal(err)
	}
	<-g.got
	g.release <- boom
	if err := c.close(); !errors.Is(err, boom) {
		t.Fatalf("close = %v, want %v", err, boom)
	}
	if err := c.add(forwardPB(&ForwardChunk{Data: []byte("late")})); !errors.Is(err, boom) {
		t.Fatalf("add after a failed send = %v, want %v", err, boom)
	}
}

// A provider faster than the host waits once forwardMax bytes wait,
// instead of buffering without bound; nothing is lost.
func TestCoalescerBoundsWaitingBytes(t *testing.T) {
	g := newGatedSend()
	c := newForwardCoalescer(g.send)
	big := bytes.Repeat([]byte("z"), forwardMax)
	if err := c.add(forwardPB(&ForwardChunk{Status: 200})); err != nil {
		t.Fatal(err)
	}
	<-g.got // the status, held: big waits, the tail must wait for it to leave
	added := make(chan error, 3)
	go func() {
		for _, ch := range []*ForwardChunk{{Data: big}, {Data: []byte("tail")}} {
			if err := c.add(forwardPB(ch)); err != nil {
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
	for len(m.Data)+len(rest) < forwardMax+4 {
		n := <-g.got
		rest = append(rest, n.Data...)
		g.release <- nil
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(m.Data) != forwardMax || string(rest) != "tail" {
		t.Errorf("sent %d bytes then %q, want the %d waiting bytes then the tail on its own", len(m.Data), rest, forwardMax)
	}
}

// burst is a provider that hands over n text chunks at once, as one
// reading a stream that arrived faster than it was sent on.
type burst struct {
	NotSupported
	n int
}

func (b burst) ChatStream(_ context.Context, _ *ChatRequest, send func(*ChatChunk) error) error {
	for i := range b.n {
		if err := send(&ChatChunk{DeltaText: fmt.Sprintf("t%03d ", i)}); err != nil {
			return err
		}
	}
	return send(&ChatChunk{FinishReason: FinishStop})
}

// serveLLM serves p on a unix socket and returns a connection to it.
func serveLLM(t *testing.T, p Provider) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	RegisterServer(s, func(context.Context) (Provider, error) { return p, nil })
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("unix:"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A host that did not ask for batches (one built before them, or another
// language's) gets every chunk as a message of its own; one that asked
// gets the same chunks, in order, some of them in more.
func TestChatStreamBatchesOnlyForHostsThatAsk(t *testing.T) {
	const n = 200
	conn := serveLLM(t, burst{n: n})
	// A raw client of the service, as a host of any version holds.
	raw := pb.NewLLMClient(conn)
	collect := func(ctx context.Context) (texts []string, msgs int) {
		st, err := raw.ChatStream(ctx, &pb.ChatRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			c, err := st.Recv()
			if errors.Is(err, io.EOF) {
				return texts, msgs
			}
			if err != nil {
				t.Fatal(err)
			}
			msgs++
			for _, x := range append([]*pb.ChatChunk{c}, c.More...) {
				texts = append(texts, x.DeltaText+x.FinishReason)
			}
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("t%03d ", i))
	}
	want = append(want, FinishStop)
	old, oldMsgs := collect(context.Background())
	if fmt.Sprint(old) != fmt.Sprint(want) || oldMsgs != n+1 {
		t.Errorf("host without batches: %d messages %v, want %d one by one", oldMsgs, old, n+1)
	}
	batched, _ := collect(metadata.AppendToOutgoingContext(context.Background(), chunksHeader, "batch"))
	if fmt.Sprint(batched) != fmt.Sprint(want) {
		t.Errorf("host with batches got %v, want %v", batched, want)
	}
	// The SDK's own client asks for batches and hands every chunk over
	// on its own.
	var got []string
	if err := NewClient(conn).ChatStream(context.Background(), &ChatRequest{}, func(c *ChatChunk) error {
		got = append(got, c.DeltaText+c.FinishReason)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SDK client got %v, want %v", got, want)
	}
}

func TestChatCoalescerPutsWaitingChunksInMore(t *testing.T) {
	got := make(chan *pb.ChatChunk, 10)
	release := make(chan struct{})
	c := newChatCoalescer(func(m *pb.ChatChunk) error { got <- m; <-release; return nil })
	if err := c.add(&pb.ChatChunk{DeltaText: "a"}); err != nil {
		t.Fatal(err)
	}
	first := <-got
	for _, s := range []string{"b", "c", "d"} {
		if err := c.add(&pb.ChatChunk{DeltaText: s}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- c.close() }()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second := <-got
	if first.DeltaText != "a" || len(first.More) != 0 || second.DeltaText != "b" || len(second.More) != 2 || second.More[0].DeltaText != "c" || second.More[1].DeltaText != "d" {
		t.Errorf("messages %v then %v, want a alone then b carrying c and d", first, second)
	}
}
