package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Sandbox modes for a stdio server.
const (
	// sandboxInherit runs the server as the plugin's child, inside the
	// plugin's own sandbox.
	sandboxInherit = "inherit"
	// sandboxNone runs the server unconfined; the author must say so.
	sandboxNone = "none"
	// defaultSandbox applies when the config names none: a server is
	// sandboxed unless the author opts out, and fails closed when no
	// sandbox can be made.
	defaultSandbox = sandboxLocal
)

// defaultMemoryMB bounds a local-sandboxed server's memory.
const defaultMemoryMB = 1024

type config struct {
	// Command is the stdio server's argv (Command[0] looked up on PATH);
	// Args are appended, so a blueprint can keep the launcher and the
	// server's own flags apart.
	Command []string          `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	Dir     string            `json:"dir"`
	Sandbox string            `json:"sandbox"`

	// ReadOnly, Workspace, WorkspaceWritable, MemoryMB and AllowUnlimited
	// shape a sandbox = "local" server's own sandbox.
	ReadOnly          []string `json:"read_only"`
	Workspace         string   `json:"workspace"`
	WorkspaceWritable bool     `json:"workspace_writable"`
	MemoryMB          int      `json:"memory_mb"`
	AllowUnlimited    bool     `json:"allow_unlimited"`

	// URL is a streamable-HTTP server's endpoint; Headers are sent with
	// every request (an Authorization header, say).
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	// BearerToken is resolved by the host from credential("NAME") and
	// sent as Authorization: Bearer to URL.
	BearerToken string `json:"bearer_token"`

	// ToolPrefix is put in front of every tool name, so two servers that
	// both offer "search" do not collide in the agent's one tool list.
	ToolPrefix string `json:"tool_prefix"`
	// Timeout bounds one tool call (a Go duration).
	Timeout     string `json:"timeout"`
	callTimeout time.Duration
}

func defaultConfig() config {
	return config{Sandbox: defaultSandbox, Timeout: "120s", callTimeout: 120 * time.Second, MemoryMB: defaultMemoryMB}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		Command           []string          `json:"command"`
		Args              []string          `json:"args"`
		Env               map[string]string `json:"env"`
		Dir               *string           `json:"dir"`
		Sandbox           *string           `json:"sandbox"`
		URL               *string           `json:"url"`
		Headers           map[string]string `json:"headers"`
		ToolPrefix        *string           `json:"tool_prefix"`
		BearerToken       *string           `json:"bearer_token"`
		Timeout           *string           `json:"timeout"`
		ReadOnly          []string          `json:"read_only"`
		Workspace         *string           `json:"workspace"`
		WorkspaceWritable *bool             `json:"workspace_writable"`
		MemoryMB          *float64          `json:"memory_mb"`
		AllowUnlimited    *bool             `json:"allow_unlimited"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	c.Command, c.Args, c.Env, c.Headers = in.Command, in.Args, in.Env, in.Headers
	c.ReadOnly = in.ReadOnly
	for dst, src := range map[*bool]*bool{&c.WorkspaceWritable: in.WorkspaceWritable, &c.AllowUnlimited: in.AllowUnlimited} {
		if src != nil {
			*dst = *src
		}
	}
	if in.MemoryMB != nil {
		c.MemoryMB = int(*in.MemoryMB)
	}
	for dst, src := range map[*string]*string{&c.Dir: in.Dir, &c.Sandbox: in.Sandbox, &c.URL: in.URL, &c.ToolPrefix: in.ToolPrefix, &c.Workspace: in.Workspace, &c.BearerToken: in.BearerToken, &c.Timeout: in.Timeout} {
		if src != nil {
			*dst = *src
		}
	}
	if c.Sandbox == "" {
		c.Sandbox = defaultSandbox
	}
	c.callTimeout, _ = time.ParseDuration(c.Timeout)
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	switch {
	case len(c.Command) == 0 && c.URL == "":
		ds = append(ds, plugin.Errorf(nil, "set command (a stdio MCP server) or url (a streamable-HTTP MCP server)"))
	case len(c.Command) > 0 && c.URL != "":
		ds = append(ds, plugin.Errorf([]string{"url"}, "set command or url, not both: one plugin instance imports one MCP server"))
	}
	if len(c.Command) > 0 {
		if c.Command[0] == "" {
			ds = append(ds, plugin.Errorf([]string{"command"}, "command[0] must name the program to run"))
		}
		switch c.Sandbox {
		case sandboxInherit, sandboxNone, sandboxLocal:
		default:
			ds = append(ds, plugin.Errorf([]string{"sandbox"}, `sandbox must be "local", "inherit" or "none", got %q`, c.Sandbox))
		}
		if c.Sandbox == sandboxLocal {
			if c.Dir != "" {
				ds = append(ds, plugin.Errorf([]string{"dir"}, `dir does not apply to sandbox = "local": the server starts in its sandbox's /workspace`))
			}
			for _, p := range c.ReadOnly {
				if !filepath.IsAbs(p) {
					ds = append(ds, plugin.Errorf([]string{"read_only"}, "read_only path %q must be absolute", p))
				}
			}
			if c.Workspace != "" && !filepath.IsAbs(c.Workspace) {
				ds = append(ds, plugin.Errorf([]string{"workspace"}, "workspace %q must be an absolute host path", c.Workspace))
			}
			if c.MemoryMB < 16 {
				ds = append(ds, plugin.Errorf([]string{"memory_mb"}, "memory_mb must be at least 16, got %d", c.MemoryMB))
			}
		} else if len(c.ReadOnly) > 0 || c.Workspace != "" || c.WorkspaceWritable || c.AllowUnlimited {
			ds = append(ds, plugin.Errorf([]string{"sandbox"}, `read_only, workspace, workspace_writable and allow_unlimited apply only to sandbox = "local"`))
		}
	} else {
		if c.Sandbox != defaultSandbox {
			ds = append(ds, plugin.Errorf([]string{"sandbox"}, "sandbox applies to a stdio server (command); an HTTP server is confined by the egress policy"))
		}
		if len(c.Env) > 0 || len(c.Args) > 0 || c.Dir != "" {
			ds = append(ds, plugin.Errorf([]string{"env"}, "env, args and dir apply to a stdio server (command), not to url"))
		}
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ds = append(ds, plugin.Errorf([]string{"url"}, "url %q must be an absolute http or https URL", c.URL))
		}
	} else if len(c.Headers) > 0 || c.BearerToken != "" {
		ds = append(ds, plugin.Errorf([]string{"headers"}, "headers and bearer_token apply to url, not to a stdio server"))
	}
	for k := range c.Headers {
		if strings.EqualFold(k, "Authorization") && c.BearerToken != "" {
			ds = append(ds, plugin.Errorf([]string{"headers", k}, "set bearer_token or an Authorization header, not both"))
		}
	}
	if strings.ContainsAny(c.BearerToken, "\r\n") {
		ds = append(ds, plugin.Errorf([]string{"bearer_token"}, "bearer_token contains a line break; re-add the credential without it"))
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			ds = append(ds, plugin.Errorf([]string{"env"}, "env name %q is not a valid variable name", k))
		}
	}
	if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 || d > time.Hour {
		ds = append(ds, plugin.Errorf([]string{"timeout"}, "timeout %q must be a Go duration between 0 and 1h, such as 60s", c.Timeout))
	}
	return ds
}

// argv is the full command line of a stdio server.
func (c config) argv() []string {
	return append(append([]string(nil), c.Command...), c.Args...)
}
