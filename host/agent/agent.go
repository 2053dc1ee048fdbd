package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
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
	HTTP     *http.Client
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
	client := openai.NewClient(
		option.WithBaseURL(o.BaseURL),
		// The gateway ignores caller credentials; the SDK insists on one.
		option.WithAPIKey("sandbox"),
		option.WithHTTPClient(o.HTTP),
		option.WithMaxRetries(0),
	)
	var tb *toolbox
	if o.MCPURL != "" {
		var err error
		tb, err = connectTools(ctx, o.MCPURL, o.HTTP)
		if err != nil {
			return err
		}
		defer tb.Close()
	}
	c := &conversation{o: o, client: client, tools: tb,
		history: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(o.System)}}
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
	client  openai.Client
	tools   *toolbox
	history []openai.ChatCompletionMessageParamUnion
}

func (c *conversation) interactive(ctx context.Context) error {
	in := bufio.NewScanner(c.o.In)
	in.Buffer(make([]byte, 64*1024), 1<<20)
	for {
		fmt.Fprint(c.o.Out, "> ")
		if !in.Scan() {
			fmt.Fprintln(c.o.Out)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		}
		if err := c.turn(ctx, line, nil); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A failed turn is reported and the chat goes on.
			fmt.Fprintf(c.o.Progress, "error: %v\n", err)
		}
	}
}

// turn sends one user message and runs the tool loop until the model
// answers without tool calls.
func (c *conversation) turn(ctx context.Context, text string, attachments []string) error {
	msg, err := c.userMessage(ctx, text, attachments)
	if err != nil {
		return err
	}
	c.history = append(c.history, msg)
	for step := 0; step < c.o.MaxSteps; step++ {
		msg, err := c.complete(ctx)
		if err != nil {
			return err
		}
		c.history = append(c.history, msg.ToParam())
		if len(msg.ToolCalls) == 0 {
			return nil
		}
		for _, call := range msg.ToolCalls {
			fmt.Fprintf(c.o.Progress, "→ %s %s\n", call.Function.Name, call.Function.Arguments)
			result := c.callTool(ctx, call.Function.Name, call.Function.Arguments)
			c.history = append(c.history, openai.ToolMessage(result, call.ID))
		}
	}
	return fmt.Errorf("stopped after %d model calls in one turn; the model kept calling tools", c.o.MaxSteps)
}

func (c *conversation) params() openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: c.o.Model, Messages: c.history}
	if c.tools != nil {
		p.Tools = c.tools.openaiTools()
	}
	return p
}

// complete asks the model for the next message, streaming its text to Out.
func (c *conversation) complete(ctx context.Context) (openai.ChatCompletionMessage, error) {
	if c.o.NoStream {
		resp, err := c.client.Chat.Completions.New(ctx, c.params())
		if err != nil {
			return openai.ChatCompletionMessage{}, fmt.Errorf("inference gateway: %w", err)
		}
		if len(resp.Choices) == 0 {
			return openai.ChatCompletionMessage{}, errors.New("inference gateway returned no choices")
		}
		msg := resp.Choices[0].Message
		if msg.Content != "" {
			fmt.Fprintln(c.o.Out, msg.Content)
		}
		return msg, nil
	}
	stream := c.client.Chat.Completions.NewStreaming(ctx, c.params())
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	wrote := false
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			fmt.Fprint(c.o.Out, chunk.Choices[0].Delta.Content)
			wrote = true
		}
	}
	if wrote {
		fmt.Fprintln(c.o.Out)
	}
	if err := stream.Err(); err != nil {
		return openai.ChatCompletionMessage{}, fmt.Errorf("inference gateway: %w", err)
	}
	if len(acc.Choices) == 0 {
		return openai.ChatCompletionMessage{}, errors.New("inference gateway streamed no choices")
	}
	return acc.Choices[0].Message, nil
}

func (c *conversation) callTool(ctx context.Context, name, args string) string {
	if c.tools == nil {
		return `{"error":"no tools are available in this sandbox"}`
	}
	out, err := c.tools.call(ctx, name, json.RawMessage(args))
	if err != nil {
		fmt.Fprintf(c.o.Progress, "  tool error: %v\n", err)
		return fmt.Sprintf(`{"error":%q}`, err.Error())
	}
	return out
}
