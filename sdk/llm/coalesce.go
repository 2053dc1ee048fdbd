package llm

import (
	"maps"
	"os"
	"sync"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/llmv1"
)

// A Forward answer is a byte stream: where one ForwardChunk ends and the
// next begins carries no meaning (the host cuts the bytes into events
// itself, as it must for any network read). So the plugin side sends the
// chunks from a goroutine of their own, and the chunks the provider hands
// over while one message is on its way leave together as the next message:
// fewer gRPC messages, fewer wake-ups on both sides, nothing delayed (a
// chunk that finds the sender idle leaves at once). The host still writes
// and flushes each event to its client as it arrives.
//
// NEMOCLAVE_PLUGIN_COALESCE=off in the plugin's environment sends every
// chunk as its own message, as SDKs before this did (for measurements).

// coalesceMax bounds the bytes waiting in a coalescer: a provider faster
// than the host reads waits, as it would on gRPC's flow control.
const coalesceMax = 1 << 20

// coalesceOff is read once: the switch is for a whole plugin process.
var coalesceOff = os.Getenv("NEMOCLAVE_PLUGIN_COALESCE") == "off"

// forwardCoalescer merges waiting ForwardChunks into one message.
type forwardCoalescer struct {
	send func(*pb.ForwardChunk) error

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending is taken or the sender ends
	pending *pb.ForwardChunk
	closed  bool
	err     error // the first failed send: every later add returns it
	wake    chan struct{}
	done    chan struct{}
}

func newForwardCoalescer(send func(*pb.ForwardChunk) error) *forwardCoalescer {
	c := &forwardCoalescer{send: send, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.cond.L = &c.mu
	go c.run()
	return c
}

// add queues ch behind what is waiting; it blocks only while coalesceMax
// bytes wait, and returns the error of a failed earlier send.
func (c *forwardCoalescer) add(ch *ForwardChunk) error {
	c.mu.Lock()
	for c.err == nil && c.pending != nil && len(c.pending.Data) >= coalesceMax {
		c.cond.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	switch {
	case c.pending == nil:
		c.pending = pendingOf(ch)
	case ch.Status != 0 || len(ch.Headers) > 0:
		// Status and headers belong to the first chunk only; a provider
		// that sends them again gets its chunks as they are (merged data
		// would move them). Wait for the waiting one to leave.
		for c.err == nil && c.pending != nil {
			c.cond.Wait()
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		c.pending = pendingOf(ch)
	default:
		c.pending.Data = append(c.pending.Data, ch.Data...)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// pendingOf copies ch: a provider may reuse its buffer once send
// returned, as it could when send encoded the message before returning.
func pendingOf(ch *ForwardChunk) *pb.ForwardChunk {
	data := make([]byte, len(ch.Data), max(len(ch.Data), 512))
	copy(data, ch.Data)
	return &pb.ForwardChunk{Status: int32(ch.Status), Headers: maps.Clone(ch.Headers), Data: data}
}

func (c *forwardCoalescer) run() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for c.pending == nil && !c.closed {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		m := c.pending
		c.pending = nil
		c.cond.Broadcast()
		c.mu.Unlock()
		if m == nil { // closed and drained
			return
		}
		if err := c.send(m); err != nil {
			c.mu.Lock()
			c.err = err
			c.pending = nil
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
	}
}

// close sends what is waiting and returns once the sender is done (the
// handler may not return while it could still send), with the first send
// error.
func (c *forwardCoalescer) close() error {
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
