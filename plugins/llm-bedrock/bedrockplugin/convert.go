package bedrockplugin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// toConverse maps a neutral request onto Converse. Bedrock wants
// alternating user/assistant turns, tool results as toolResult blocks in
// a user turn, and no blank text blocks, so consecutive turns of one role
// are merged and empty text is dropped.
func toConverse(c Config, req *llm.ChatRequest) (*bedrockruntime.ConverseStreamInput, error) {
	if req.Model == "" {
		return nil, errors.New("the request names no model")
	}
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(c.modelID(req.Model))}
	if req.System != "" {
		in.System = append(in.System, &types.SystemContentBlockMemberText{Value: req.System})
	}
	usesTools := false
	for i, m := range req.Messages {
		var role types.ConversationRole
		var blocks []types.ContentBlock
		switch m.Role {
		case llm.RoleSystem:
			if t := m.Text(); t != "" {
				in.System = append(in.System, &types.SystemContentBlockMemberText{Value: t})
			}
			continue
		case llm.RoleUser:
			role = types.ConversationRoleUser
			var err error
			if blocks, err = contentBlocks(m.Content); err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
		case llm.RoleAssistant:
			role = types.ConversationRoleAssistant
			var err error
			if blocks, err = contentBlocks(m.Content); err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			for _, tc := range m.ToolCalls {
				usesTools = true
				blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
					ToolUseId: aws.String(tc.ID), Name: aws.String(tc.Name), Input: document.NewLazyDocument(arguments(tc.Arguments))}})
			}
		case llm.RoleTool:
			usesTools = true
			role = types.ConversationRoleUser
			res, err := toolResult(m)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			blocks = []types.ContentBlock{res}
		default:
			return nil, fmt.Errorf("message %d has role %q; use system, user, assistant or tool", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(in.Messages); n > 0 && in.Messages[n-1].Role == role {
			in.Messages[n-1].Content = append(in.Messages[n-1].Content, blocks...)
			continue
		}
		in.Messages = append(in.Messages, types.Message{Role: role, Content: blocks})
	}
	if len(in.Messages) == 0 {
		return nil, errors.New("the request has no user or assistant message with content")
	}
	inf := &types.InferenceConfiguration{StopSequences: req.Stop}
	if req.MaxTokens != nil {
		inf.MaxTokens = aws.Int32(int32(min(*req.MaxTokens, math.MaxInt32)))
	}
	if req.Temperature != nil {
		inf.Temperature = aws.Float32(float32(*req.Temperature))
	}
	if req.TopP != nil {
		inf.TopP = aws.Float32(float32(*req.TopP))
	}
	if inf.MaxTokens != nil || inf.Temperature != nil || inf.TopP != nil || len(inf.StopSequences) > 0 {
		in.InferenceConfig = inf
	}
	// Converse has no "none" tool choice; without tool blocks in the
	// history the tools are simply not offered. With them Bedrock demands
	// the tool config, so the model may still choose a tool (documented).
	if len(req.Tools) > 0 && (req.ToolChoice != "none" || usesTools) {
		tc := &types.ToolConfiguration{}
		for _, t := range req.Tools {
			var params any = map[string]any{"type": "object"}
			if len(t.Parameters) > 0 {
				if err := json.Unmarshal(t.Parameters, &params); err != nil {
					return nil, fmt.Errorf("tool %q: parameters are not JSON: %v", t.Name, err)
				}
			}
			spec := types.ToolSpecification{Name: aws.String(t.Name), InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(params)}}
			if t.Description != "" {
				spec.Description = aws.String(t.Description)
			}
			tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: spec})
		}
		switch req.ToolChoice {
		case "", "auto", "none":
		case "required":
			tc.ToolChoice = &types.ToolChoiceMemberAny{Value: types.AnyToolChoice{}}
		default:
			tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(req.ToolChoice)}}
		}
		in.ToolConfig = tc
	}
	return in, nil
}

func contentBlocks(parts []llm.ContentPart) ([]types.ContentBlock, error) {
	var out []types.ContentBlock
	for _, p := range parts {
		if p.Image == nil {
			if strings.TrimSpace(p.Text) != "" {
				out = append(out, &types.ContentBlockMemberText{Value: p.Text})
			}
			continue
		}
		img, err := imageBlock(p.Image)
		if err != nil {
			return nil, err
		}
		out = append(out, &types.ContentBlockMemberImage{Value: img})
	}
	return out, nil
}

// imageBlock takes inline bytes, a data: URL or an s3:// URI: Bedrock
// does not fetch http(s) images.
func imageBlock(im *llm.Image) (types.ImageBlock, error) {
	data, mime := im.Data, im.MIMEType
	if len(data) == 0 && strings.HasPrefix(im.URL, "s3://") {
		f, err := imageFormat(mime, im.URL)
		return types.ImageBlock{Format: f, Source: &types.ImageSourceMemberS3Location{Value: types.S3Location{Uri: aws.String(im.URL)}}}, err
	}
	if len(data) == 0 && strings.HasPrefix(im.URL, "data:") {
		head, payload, ok := strings.Cut(strings.TrimPrefix(im.URL, "data:"), ",")
		if !ok || !strings.HasSuffix(head, ";base64") {
			return types.ImageBlock{}, errors.New("an image data: URL must be base64 (data:image/png;base64,...)")
		}
		var err error
		if data, err = base64.StdEncoding.DecodeString(payload); err != nil {
			return types.ImageBlock{}, fmt.Errorf("an image data: URL is not valid base64: %v", err)
		}
		mime = strings.TrimSuffix(head, ";base64")
	}
	if len(data) == 0 {
		return types.ImageBlock{}, fmt.Errorf("images are sent inline to Bedrock, which does not fetch %q: send the image inline (base64) or as an s3:// URI", im.URL)
	}
	f, err := imageFormat(mime, "")
	return types.ImageBlock{Format: f, Source: &types.ImageSourceMemberBytes{Value: data}}, err
}

func imageFormat(mime, uri string) (types.ImageFormat, error) {
	switch {
	case mime == "image/png" || strings.HasSuffix(uri, ".png"):
		return types.ImageFormatPng, nil
	case mime == "image/jpeg" || mime == "image/jpg" || strings.HasSuffix(uri, ".jpg") || strings.HasSuffix(uri, ".jpeg"):
		return types.ImageFormatJpeg, nil
	case mime == "image/gif" || strings.HasSuffix(uri, ".gif"):
		return types.ImageFormatGif, nil
	case mime == "image/webp" || strings.HasSuffix(uri, ".webp"):
		return types.ImageFormatWebp, nil
	}
	return "", fmt.Errorf("image type %q is not one Bedrock takes (png, jpeg, gif, webp)", mime+uri)
}

func toolResult(m llm.Message) (types.ContentBlock, error) {
	if m.ToolCallID == "" {
		return nil, errors.New("a tool message needs the id of the call it answers")
	}
	var content []types.ToolResultContentBlock
	for _, p := range m.Content {
		if p.Image != nil {
			img, err := imageBlock(p.Image)
			if err != nil {
				return nil, err
			}
			content = append(content, &types.ToolResultContentBlockMemberImage{Value: img})
		} else if p.Text != "" {
			content = append(content, &types.ToolResultContentBlockMemberText{Value: p.Text})
		}
	}
	if len(content) == 0 {
		// Bedrock refuses a result without content; an empty result is
		// still an answer the model must see.
		content = append(content, &types.ToolResultContentBlockMemberText{Value: "(empty)"})
	}
	return &types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String(m.ToolCallID), Content: content}}, nil
}

// arguments parses a tool call's JSON text into the object Bedrock wants;
// text that is not an object is kept under _raw_arguments rather than
// dropped, as llm-anthropic does.
func arguments(s string) any {
	if strings.TrimSpace(s) == "" {
		return map[string]any{}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil || v == nil {
		return map[string]any{"_raw_arguments": s}
	}
	return v
}

func fromConverse(out *bedrockruntime.ConverseOutput) *llm.ChatResponse {
	resp := &llm.ChatResponse{Message: llm.Message{Role: llm.RoleAssistant}, FinishReason: finishReason(out.StopReason)}
	if msg, ok := out.Output.(*types.ConverseOutputMemberMessage); ok {
		var text strings.Builder
		for _, b := range msg.Value.Content {
			switch b := b.(type) {
			case *types.ContentBlockMemberText:
				text.WriteString(b.Value)
			case *types.ContentBlockMemberToolUse:
				resp.Message.ToolCalls = append(resp.Message.ToolCalls, llm.ToolCall{
					ID: aws.ToString(b.Value.ToolUseId), Name: aws.ToString(b.Value.Name), Arguments: inputJSON(b.Value.Input)})
			}
		}
		if text.Len() > 0 {
			resp.Message.Content = []llm.ContentPart{llm.Text(text.String())}
		}
	}
	if u := usage(out.Usage); u != nil {
		resp.Usage = *u
	}
	return resp
}

func inputJSON(d document.Interface) string {
	if d == nil {
		return "{}"
	}
	b, err := d.MarshalSmithyDocument()
	if err != nil {
		return "{}"
	}
	return string(b)
}

// usage counts cached tokens into the input, as the neutral Usage does;
// Bedrock's inputTokens excludes cache reads and writes.
func usage(u *types.TokenUsage) *llm.Usage {
	if u == nil {
		return nil
	}
	read, write := int64(aws.ToInt32(u.CacheReadInputTokens)), int64(aws.ToInt32(u.CacheWriteInputTokens))
	return &llm.Usage{InputTokens: int64(aws.ToInt32(u.InputTokens)) + read + write, OutputTokens: int64(aws.ToInt32(u.OutputTokens)), CachedInputTokens: read}
}

func finishReason(r types.StopReason) string {
	switch r {
	case types.StopReasonToolUse:
		return llm.FinishToolCalls
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return llm.FinishLength
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		return llm.FinishContentFilter
	}
	return llm.FinishStop
}

// streamDecoder turns ConverseStream events into neutral chunks; content
// block indexes of tool uses become tool call indexes 0, 1, ...
type streamDecoder struct {
	tools  map[int32]int
	finish string
	usage  *llm.Usage
}

// decode fills ch from ev and reports whether it carries content to send.
func (d *streamDecoder) decode(ev types.ConverseStreamOutput, ch *llm.ChatChunk) bool {
	switch e := ev.(type) {
	case *types.ConverseStreamOutputMemberContentBlockStart:
		tu, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse)
		if !ok {
			return false
		}
		if d.tools == nil {
			d.tools = map[int32]int{}
		}
		idx := len(d.tools)
		d.tools[aws.ToInt32(e.Value.ContentBlockIndex)] = idx
		ch.ToolCalls = []llm.ToolCallDelta{{Index: idx, ID: aws.ToString(tu.Value.ToolUseId), Name: aws.ToString(tu.Value.Name)}}
		return true
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch dl := e.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			ch.DeltaText = dl.Value
			return dl.Value != ""
		case *types.ContentBlockDeltaMemberToolUse:
			idx, ok := d.tools[aws.ToInt32(e.Value.ContentBlockIndex)]
			if !ok || aws.ToString(dl.Value.Input) == "" {
				return false
			}
			ch.ToolCalls = []llm.ToolCallDelta{{Index: idx, ArgumentsDelta: aws.ToString(dl.Value.Input)}}
			return true
		}
	case *types.ConverseStreamOutputMemberMessageStop:
		d.finish = finishReason(e.Value.StopReason)
	case *types.ConverseStreamOutputMemberMetadata:
		d.usage = usage(e.Value.Usage)
	}
	return false
}
