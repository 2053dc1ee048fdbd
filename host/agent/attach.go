package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/nemoclave/nemoclave/internal/toolloop"
	"github.com/nemoclave/nemoclave/internal/wire/openai"
)

// maxImageBytes bounds an attached image (providers refuse larger ones).
const maxImageBytes = 20 << 20

// userMessage builds the user turn: the text, each attached image as an
// image part (for vision-capable models), and each attached document's
// text extracted by the gateway's document_read tool (dataproc plugin).
func (c *conversation) userMessage(ctx context.Context, text string, attachments []string) (openai.Message, error) {
	if len(attachments) == 0 {
		return toolloop.UserMessage(text), nil
	}
	parts := []openai.ContentPart{{Type: "text", Text: text}}
	for _, path := range attachments {
		data, err := os.ReadFile(path)
		if err != nil {
			return openai.Message{}, fmt.Errorf("attachment %s: %w", path, err)
		}
		mime := http.DetectContentType(data)
		if strings.HasPrefix(mime, "image/") {
			if len(data) > maxImageBytes {
				return openai.Message{}, fmt.Errorf("attachment %s: images are limited to %d MiB", path, maxImageBytes>>20)
			}
			url := "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
			parts = append(parts, openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: url}})
			continue
		}
		doc, err := c.readDocument(ctx, path)
		if err != nil {
			return openai.Message{}, err
		}
		parts = append(parts, openai.ContentPart{Type: "text", Text: fmt.Sprintf("<attachment name=%q>\n%s\n</attachment>", filepath.Base(path), doc)})
	}
	return toolloop.UserParts(parts), nil
}

// readDocument extracts a document's text through the gateway, which runs
// the blueprint's dataproc plugin on the workspace copy. Plain text needs
// no plugin.
func (c *conversation) readDocument(ctx context.Context, path string) (string, error) {
	if c.tools != nil && c.tools.has("document_read") {
		args, _ := json.Marshal(map[string]string{"path": path})
		return c.tools.Call(ctx, "document_read", args)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if ct := http.DetectContentType(data); strings.HasPrefix(ct, "text/") {
		return string(data), nil
	}
	return "", fmt.Errorf("attachment %s is not text and the sandbox has no document_read tool; add a dataproc plugin (builtin/dataproc-docs) to the blueprint", path)
}
