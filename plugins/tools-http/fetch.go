package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/charset"

	"github.com/nemoclave/nemoclave/sdk/tools"
)

const maxRedirects = 10

var fetchTool = tools.Tool{
	Name: "fetch_url",
	Description: "Fetch a URL (http or https) and return its content as readable text. HTML pages are converted to Markdown-like text; " +
		"JSON, XML and other text are returned as is; images are returned as images. Long texts are returned in pages: " +
		"the result says which start_index to ask for next.",
	InputSchema: json.RawMessage(`{"type":"object","properties":{` +
		`"url":{"type":"string","description":"The http or https URL to fetch."},` +
		`"raw":{"type":"boolean","description":"Return HTML source as is instead of converting it to text (default false)."},` +
		`"start_index":{"type":"integer","minimum":0,"description":"Character offset into the text to start from, for reading further pages (default 0)."},` +
		`"max_length":{"type":"integer","minimum":1,"description":"Maximum number of characters to return (default from the plugin config)."}` +
		`},"required":["url"],"additionalProperties":false}`),
	ReadOnly: true,
}

type fetchArgs struct {
	URL        string `json:"url"`
	Raw        bool   `json:"raw"`
	StartIndex int    `json:"start_index"`
	MaxLength  int    `json:"max_length"`
}

func fetch(ctx context.Context, client *http.Client, c config, raw json.RawMessage) *tools.CallResult {
	var args fetchArgs
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&args); err != nil {
		return tools.ErrorResult(fmt.Sprintf("invalid arguments: %v; see the tool's input schema", err))
	}
	if args.StartIndex < 0 || args.MaxLength < 0 {
		return tools.ErrorResult("start_index and max_length must not be negative")
	}
	if args.MaxLength == 0 {
		args.MaxLength = c.MaxLength
	}
	u, err := url.Parse(args.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return tools.ErrorResult(fmt.Sprintf("url %q is not an absolute http or https URL", args.URL))
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return tools.ErrorResult(fmt.Sprintf("url %q: %v", args.URL, err))
	}
	req.Header.Set("User-Agent", c.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.8")
	resp, err := client.Do(req)
	if err != nil {
		return tools.ErrorResult(explainFetchError(args.URL, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.MaxBytes+1))
	if err != nil {
		return tools.ErrorResult(fmt.Sprintf("reading %s: %v", args.URL, err))
	}
	truncated := int64(len(body)) > c.MaxBytes
	if truncated {
		body = body[:c.MaxBytes]
	}

	ctype := resp.Header.Get("Content-Type")
	if ctype == "" {
		ctype = http.DetectContentType(body)
	}
	mediaType, _, _ := mime.ParseMediaType(ctype)
	header := fmt.Sprintf("URL: %s\nStatus: %s\nContent-Type: %s\n", resp.Request.URL, resp.Status, ctype)
	isErr := resp.StatusCode >= 400

	if strings.HasPrefix(mediaType, "image/") && !truncated {
		return &tools.CallResult{IsError: isErr, Content: []tools.Content{
			tools.TextContent(header),
			{Image: &tools.Blob{MIMEType: mediaType, Data: body, URI: resp.Request.URL.String()}},
		}}
	}
	if !isText(mediaType) {
		return &tools.CallResult{IsError: isErr, Content: []tools.Content{tools.TextContent(header + fmt.Sprintf(
			"\n[%s is binary content (%d bytes%s); fetch_url returns only text and images]", mediaType, len(body), cutNote(truncated)))}}
	}
	text, err := decodeText(body, ctype)
	if err != nil {
		return tools.ErrorResult(fmt.Sprintf("%s: %v", args.URL, err))
	}
	if (mediaType == "text/html" || mediaType == "application/xhtml+xml") && !args.Raw {
		title, md := htmlToText(text, resp.Request.URL)
		if title != "" {
			header += "Title: " + title + "\n"
		}
		text = md
	}
	if truncated {
		header += fmt.Sprintf("Note: the body was cut at max_bytes (%d bytes)\n", c.MaxBytes)
	}
	page, next := window(text, args.StartIndex, args.MaxLength)
	out := header + "\n" + page
	if next > 0 {
		out += fmt.Sprintf("\n\n[text continues: call fetch_url again with start_index=%d]", next)
	}
	return &tools.CallResult{IsError: isErr, Content: []tools.Content{tools.TextContent(out)}}
}

// isText reports whether a media type is worth returning as text.
func isText(mediaType string) bool {
	switch {
	case strings.HasPrefix(mediaType, "text/"),
		mediaType == "application/json", strings.HasSuffix(mediaType, "+json"),
		mediaType == "application/xml", strings.HasSuffix(mediaType, "+xml"),
		mediaType == "application/javascript", mediaType == "application/x-ndjson",
		mediaType == "application/yaml", mediaType == "application/x-yaml", mediaType == "application/toml":
		return true
	}
	return false
}

// decodeText converts body to UTF-8 from the charset the Content-Type
// names or, for HTML, the one its <meta> declares.
func decodeText(body []byte, ctype string) (string, error) {
	if utf8.Valid(body) && !strings.Contains(strings.ToLower(ctype), "charset=") {
		return string(body), nil
	}
	r, err := charset.NewReader(bytes.NewReader(body), ctype)
	if err != nil {
		return "", fmt.Errorf("unsupported charset in %q: %w", ctype, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("decoding charset: %w", err)
	}
	return string(out), nil
}

// window returns max runes of text from rune offset start, and the offset
// of the next page (0 when nothing remains).
func window(text string, start, max int) (string, int) {
	runes := []rune(text)
	if start >= len(runes) {
		if start == 0 {
			return "", 0
		}
		return fmt.Sprintf("[start_index %d is past the end of the text (%d characters)]", start, len(runes)), 0
	}
	end := min(start+max, len(runes))
	next := 0
	if end < len(runes) {
		next = end
	}
	return string(runes[start:end]), next
}

func cutNote(truncated bool) string {
	if truncated {
		return ", cut at max_bytes"
	}
	return ""
}

// explainFetchError turns a transport error into something the model can
// act on; a proxy refusal is the common case inside a sandbox.
func explainFetchError(raw string, err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Forbidden") || strings.Contains(msg, "403"):
		return fmt.Sprintf("fetching %s: the egress proxy refused the connection (%v); the sandbox policy does not allow this host", raw, err)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout"):
		return fmt.Sprintf("fetching %s: timed out; the server is slow or unreachable", raw)
	}
	return fmt.Sprintf("fetching %s: %v", raw, err)
}
