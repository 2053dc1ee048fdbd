package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/internal/wire/openai"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// maxResponseBytes bounds one response: 2048 inputs × 4096 dims as JSON
// floats fits comfortably.
const maxResponseBytes = 256 << 20

type batchResult struct {
	vectors [][]float32
	tokens  int64
	model   string
}

// embedBatch sends one request, retrying rate limits and transient
// failures, and returns the vectors in input order.
func embedBatch(ctx context.Context, hc *http.Client, cfg config, model string, dims int, inputs []string) (*batchResult, error) {
	in, err := json.Marshal(inputs)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "encode inputs: %v", err)
	}
	body, err := json.Marshal(openai.EmbeddingsRequest{Model: model, Input: in, EncodingFormat: "float", Dimensions: dims})
	if err != nil {
		return nil, status.Errorf(status.Internal, "encode request: %v", err)
	}
	for attempt := 0; ; attempt++ {
		res, retryAfter, err := post(ctx, hc, cfg, body)
		if err == nil {
			return decode(res, len(inputs))
		}
		code := status.CodeOf(err)
		retryable := code == status.RateLimited || code == status.Unavailable
		if !retryable || attempt >= cfg.MaxRetries {
			return nil, err
		}
		wait := retryAfter
		if wait <= 0 {
			wait = time.Duration(250<<attempt) * time.Millisecond
		}
		select {
		case <-time.After(min(wait, 30*time.Second)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// post sends the request and returns the decoded body, or a classified
// error with the server's Retry-After.
func post(ctx context.Context, hc *http.Client, cfg config, body []byte) (*openai.EmbeddingsResponse, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, cfg.BaseURL+"/embeddings", bytes.NewReader(body))
	if err != nil {
		return nil, 0, status.Errorf(status.InvalidArgument, "build request: %v", err)
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	resp, err := hc.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, 0, ctx.Err()
		case errors.Is(rctx.Err(), context.DeadlineExceeded):
			return nil, 0, status.Errorf(status.Unavailable, "embeddings server at %s did not answer within %s; raise timeout in the plugin config if it is slow", cfg.BaseURL, cfg.Timeout)
		}
		return nil, 0, status.Errorf(status.Unavailable, "embeddings server at %s unreachable: %s", cfg.BaseURL, status.Redact(err.Error(), cfg.APIKey))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, 0, status.Errorf(status.Unavailable, "read the response from %s: %v", cfg.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(raw))
		var e openai.ErrorBody
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		code := openai.StatusCode(resp.StatusCode)
		hint := ""
		switch code {
		case status.Unauthenticated:
			hint = ` (check the credential the api_key attribute names: nemoclave provider add NAME)`
		case status.NotFound:
			hint = " (check the model name and base_url)"
		}
		return nil, retryAfter(resp.Header.Get("Retry-After")), status.Errorf(code, "embeddings server at %s answered %d: %s%s", cfg.BaseURL, resp.StatusCode, status.Redact(msg, cfg.APIKey), hint)
	}
	var out openai.EmbeddingsResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, 0, status.Errorf(status.Internal, "the server at %s did not answer in the OpenAI embeddings format: %v", cfg.BaseURL, err)
	}
	return &out, 0, nil
}

// decode checks the response covers every input once and orders the
// vectors by index.
func decode(res *openai.EmbeddingsResponse, n int) (*batchResult, error) {
	if len(res.Data) != n {
		return nil, status.Errorf(status.Internal, "the server returned %d embeddings for %d inputs", len(res.Data), n)
	}
	out := &batchResult{vectors: make([][]float32, n), tokens: res.Usage.PromptTokens, model: res.Model}
	for _, d := range res.Data {
		if d.Index < 0 || d.Index >= n || out.vectors[d.Index] != nil {
			return nil, status.Errorf(status.Internal, "the server returned an embedding with index %d (out of range or repeated) for %d inputs", d.Index, n)
		}
		v, err := vector(d.Embedding)
		if err != nil {
			return nil, status.Errorf(status.Internal, "embedding %d: %v", d.Index, err)
		}
		out.vectors[d.Index] = v
	}
	for i, v := range out.vectors {
		if len(v) != len(out.vectors[0]) {
			return nil, status.Errorf(status.Internal, "embedding %d has %d dimensions, embedding 0 has %d", i, len(v), len(out.vectors[0]))
		}
	}
	return out, nil
}

// vector decodes an embedding given as a JSON float array or, from
// servers that default to it, base64 little-endian float32.
func vector(e any) ([]float32, error) {
	switch e := e.(type) {
	case []any:
		out := make([]float32, len(e))
		for i, x := range e {
			f, ok := x.(float64)
			if !ok {
				return nil, fmt.Errorf("element %d is %T, not a number", i, x)
			}
			out[i] = float32(f)
		}
		return out, nil
	case string:
		b, err := base64.StdEncoding.DecodeString(e)
		if err != nil || len(b)%4 != 0 {
			return nil, fmt.Errorf("not base64 float32 data")
		}
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("embedding is %T, want an array of numbers", e)
}

func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		return time.Until(t)
	}
	return 0
}
