package main

import (
	"testing"

	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, root+"/notes/a.txt", "alpha\nbeta\n")
	cfg := sdktest.WithConfig(`{"root":` + quote(root) + `}`)
	sdktest.Common(t, &filesPlugin{cfg: defaultConfig()}, cfg)
	sdktest.Tools(t, &filesPlugin{cfg: defaultConfig()}, cfg,
		sdktest.WithToolSample("list_files", `{"recursive":true}`),
		sdktest.WithToolSample("read_file", `{"path":"notes/a.txt"}`),
		sdktest.WithToolSample("search_files", `{"pattern":"beta"}`),
		sdktest.WithToolSample("write_file", `{"path":"out/b.txt","content":"x"}`))
}
