package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/nemoclave/nemoclave/internal/toolloop"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
)

// Options configures a run. Zero values take the sandbox environment.
type Options struct {
	// BaseURL of the OpenAI-compatible inference gateway (OPENAI_BASE_URL).
	BaseURL string
	// MCPURL of the gateway's tools MCP server (NEMOCLAVE_MCP_URL); empty
	// runs without tools.
	MCPURL string
	// Model alias to ask the gateway for (the blueprint's inference alias).
	Model string
	// System prompt.
	System string
	// Prompt runs one turn and returns; empty means interactive.
	Prompt string
	// MaxSteps bounds model calls per user turn, so a model that keeps
	// calling tools cannot loop forever.
	MaxSteps int
	// NoStream asks for unary completions instead of SSE.
	NoStream bool
	// Attachments go with the first prompt: images as image parts,
	// documents as extracted text.
	Attachments []string

	In       io.Reader
	Out      io.Writer // the assistant's words
	Progress io.Writer // tool calls and status lines
	// Interrupts (Ctrl-C on the chat's terminal: SIGINT) stop the turn
	// that is running and return to the prompt; at the prompt they say
	// how to leave. Nil: the chat is ended by its context alone.
	Interrupts <-chan os.Signal
	HTTP       *http.Client
}

const defaultSystem = "You are a helpful assistant running inside a nemoclave sandbox. " +
	"Use the available tools when they help; the workspace is at /workspace."

// Run runs the agent until the one-shot prompt is answered, or the input
// ends in interactive mode.
func Run(ctx context.Context, o Options) error {
	if o.BaseURL == "" {
		return errors.New("no inference endpoint: OPENAI_BASE_URL is not set (run the agent inside a nemoclave sandbox, or set it to an OpenAI-compatible URL)")
	}
	if o.Model == "" {
		o.Model = "default"
	}
	if o.System == "" {
		o.System = defaultSystem
	}
	if o.MaxSteps == 0 {
		o.MaxSteps = 8
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	var tb *toolbox
	if o.MCPURL != "" {
		var err error
		tb, err = connectTools(ctx, o.MCPURL, o.HTTP)
		if err != nil {
			return err
		}
		defer tb.Close()
	}
	c := &conversation{o: o, tools: tb, history: []openai.Message{toolloop.SystemMessage(o.System)}}
	c.loop = &toolloop.Loop{
		// The gateway ignores caller credentials and needs none.
		Client:   &toolloop.Client{BaseURL: o.BaseURL, HTTP: o.HTTP, Stream: !o.NoStream},
		Model:    o.Model,
		MaxSteps: o.MaxSteps,
		Text:     o.Out,
		OnCall:   func(name, args string) { fmt.Fprintf(o.Progress, "→ %s %s\n", name, args) },
		OnToolError: func(_ string, err error) {
			fmt.Fprintf(o.Progress, "  tool error: %v\n", err)
		},
	}
	if tb != nil {
		c.loop.Tools = tb
	}
	if o.Prompt != "" {
		return c.turn(ctx, o.Prompt, o.Attachments)
	}
	if len(o.Attachments) > 0 {
		return errors.New("--attach goes with -p; in a chat, ask the agent to read the file")
	}
	return c.interactive(ctx)
}

type conversation struct {
	o       Options
	loop    *toolloop.Loop
	tools   *toolbox
	history []openai.Message
}

func (c *conversation) interactive(ctx context.Context) error {
	// The input is read beside the loop, so an interrupt at the prompt is
	// answered at once.
	lines := make(chan string)
	var readErr error
	go func() {
		defer close(lines)
		in := bufio.NewScanner(c.o.In)
		in.Buffer(make([]byte, 64*1024), 1<<20)
		for in.Scan() {
			select {
			case lines <- in.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr = in.Err()
	}()
	for {
		fmt.Fprint(c.o.Out, "> ")
		var line string
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.o.Out)
			return ctx.Err()
		case <-c.o.Interrupts:
			// The terminal dropped the half-typed line; the chat goes on.
			fmt.Fprintln(c.o.Out)
			fmt.Fprintln(c.o.Progress, "(interrupted; type /exit or press Ctrl-D to leave the chat)")
			continue
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(c.o.Out)
				return readErr
			}
			line = strings.TrimSpace(l)
		}
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		}
		interrupted, err := c.interruptibleTurn(ctx, line)
		if interrupted {
			fmt.Fprintln(c.o.Out)
			fmt.Fprintln(c.o.Progress, "(interrupted: the answer was stopped; ask again or type /exit to leave)")
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A failed turn is reported and the chat goes on.
			fmt.Fprintf(c.o.Progress, "error: %v\n", err)
		}
	}
}

// interruptibleTurn runs one turn that an interrupt cancels; it reports
// whether one did.
func (c *conversation) interruptibleTurn(ctx context.Context, line string) (bool, error) {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var interrupted atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-c.o.Interrupts:
			interrupted.Store(true)
			cancel()
		case <-done:
		}
	}()
	err := c.turn(tctx, line, nil)
	// An interrupt that came as the answer ended stopped nothing.
	return interrupted.Load() && err != nil && ctx.Err() == nil, err
}

// turn sends one user message and runs the tool loop until the model
// answers without tool calls.
func (c *conversation) turn(ctx context.Context, text string, attachments []string) error {
	msg, err := c.userMessage(ctx, text, attachments)
	if err != nil {
		return err
	}
	// What the turn added stays, even when it failed: the next message
	// is read in the context the user saw.
	c.history, _, err = c.loop.Turn(ctx, append(c.history, msg))
	return err
}
