package llm

import (
	"maps"
	"os"
	"sync"

	"google.golang.org/grpc/metadata"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/llmv1"
)

// The plugin side of a stream (Forward, ChatStream) sends its messages
// from a goroutine of their own, and what the provider hands over while
// one message is on its way leaves together as the next message: fewer
// gRPC messages, fewer wake-ups on both sides, nothing delayed (a chunk
// that finds the sender idle leaves at once). The host still handles, and
// the gateway writes and flushes to its client, each chunk as it arrives.
//
//   - A Forward answer is a byte stream: where one ForwardChunk ends and the
//     next begins carries no meaning (the host cuts the bytes into events
//     itself, as it must for any network read), so waiting data is simply
//     appended. Any host reads that.
//   - ChatChunks keep their boundaries: the waiting ones travel in the
//     first one's `more` field, which the host unpacks in order. Only a
//     host that announced it reads `more` (request metadata
//     chunksHeader: "batch") gets them so; others get one message each.
//
// NEMOCLAVE_PLUGIN_COALESCE=off in the plugin's environment sends every
// chunk as its own message, as SDKs before this did (for measurements).

// chunksHeader is the request metadata by which a host says it unpacks
// ChatChunk.more.
const chunksHeader = "nemoclave-chunks"

// coalesceOff is read once: the switch is for a whole plugin process.
var coalesceOff = os.Getenv("NEMOCLAVE_PLUGIN_COALESCE") == "off"

const (
	// forwardMax bounds the bytes waiting in a Forward stream, chatMax
	// the chunks of a chat stream: a provider faster than the host reads
	// waits, as it would on gRPC's flow control.
	forwardMax = 1 << 20
	chatMax    = 1024
)

// coalescer merges the messages waiting to be sent on one stream.
type coalescer[M any] struct {
	send  func(M) error
	merge func(pending, next M) bool // appends next to pending, or false
	size  func(M) int
	max   int

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending is taken or the sender ends
	pending M
	has     bool
	closed  bool
	err     error // the first failed send: every later add returns it
	wake    chan struct{}
	done    chan struct{}
}

func newCoalescer[M any](send func(M) error, merge func(pending, next M) bool, size func(M) int, max int) *coalescer[M] {
	c := &coalescer[M]{send: send, merge: merge, size: size, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.cond.L = &c.mu
	go c.run()
	return c
}

// forwardCoalescer appends waiting data; a chunk with a status or
// headers (which belong to the first only) is never merged into data
// before it.
func newForwardCoalescer(send func(*pb.ForwardChunk) error) *coalescer[*pb.ForwardChunk] {
	return newCoalescer(send, func(p, n *pb.ForwardChunk) bool {
		if n.Status != 0 || len(n.Headers) > 0 {
			return false
		}
		p.Data = append(p.Data, n.Data...)
		return true
	}, func(p *pb.ForwardChunk) int { return len(p.Data) }, forwardMax)
}

// forwardPB copies ch: a provider may reuse its buffer once send
// returned, as it could when send encoded the message before returning.
func forwardPB(ch *ForwardChunk) *pb.ForwardChunk {
	data := append([]byte(nil), ch.Data...)
	return &pb.ForwardChunk{Status: int32(ch.Status), Headers: maps.Clone(ch.Headers), Data: data}
}

// newChatCoalescer puts waiting chunks in the first one's more field.
func newChatCoalescer(send func(*pb.ChatChunk) error) *coalescer[*pb.ChatChunk] {
	return newCoalescer(send, func(p, n *pb.ChatChunk) bool {
		p.More = append(p.More, n)
		return true
	}, func(p *pb.ChatChunk) int { return 1 + len(p.More) }, chatMax)
}

// wantsBatches reports whether the host of this stream unpacks
// ChatChunk.more.
func wantsBatches(md metadata.MD) bool {
	for _, v := range md.Get(chunksHeader) {
		if v == "batch" {
			return true
		}
	}
	return false
}

// add queues m behind what is waiting; it blocks only while max waits,
// and returns the error of a failed earlier send.
func (c *coalescer[M]) add(m M) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && c.has && c.size(c.pending) >= c.max {
		c.cond.Wait()
	}
	if c.err != nil {
		return c.err
	}
	if c.has && !c.merge(c.pending, m) {
		for c.err == nil && c.has {
			c.cond.Wait()
		}
		if c.err != nil {
			return c.err
		}
	}
	if !c.has {
		c.pending, c.has = m, true
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *coalescer[M]) run() {
	defer close(c.done)
	var zero M
	for {
		c.mu.Lock()
		for !c.has && !c.closed {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		m, ok := c.pending, c.has
		c.pending, c.has = zero, false
		c.cond.Broadcast()
		c.mu.Unlock()
		if !ok { // closed and drained
			return
		}
		if err := c.send(m); err != nil {
			c.mu.Lock()
			c.err = err
			c.pending, c.has = zero, false
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
	}
}

// close sends what is waiting and returns once the sender is done (the
// handler may not return while it could still send), with the first send
// error.
func (c *coalescer[M]) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
