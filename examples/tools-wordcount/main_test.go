package main

import (
	"os"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Common(t, &Plugin{})
	sdktest.Tools(t, &Plugin{}, sdktest.WithToolSample("wordcount", `{"text":"one two three"}`))
	sdktest.Tools(t, &Plugin{}, sdktest.WithConfig(`{"min_length":4}`),
		sdktest.WithToolSample("wordcount", `{"text":"a longer sentence"}`))
}

// TestREADMEShowsThisCode keeps the author guide honest: the plugin it
// shows is this file, compiled and tested here.
func TestREADMEShowsThisCode(t *testing.T) {
	readme, err := os.ReadFile("../../sdk/README.md")
	if err != nil {
		t.Skip("not inside the nemoclave repository:", err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), string(src)) {
		t.Fatal("sdk/README.md no longer shows examples/tools-wordcount/main.go verbatim; update one from the other")
	}
}
