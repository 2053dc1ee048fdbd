package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// site serves the pages the tests fetch.
func site(t *testing.T) *httptest.Server {
	t.Helper()
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><head><title>Hello page</title><script>var x=1</script></head><body><h2>Welcome</h2><p>UA=%s</p><a href="/next">next</a></body></html>`, r.UserAgent())
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"a":[1,2,3]}`)
	})
	mux.HandleFunc("/latin1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=iso-8859-1")
		w.Write([]byte("caf\xe9 cr\xe8me"))
	})
	mux.HandleFunc("/image", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(pngData.Bytes())
	})
	mux.HandleFunc("/binary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte{0, 1, 2, 3})
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, strings.Repeat("0123456789", 300)) // 3000 bytes
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/json", http.StatusFound)
	})
	mux.HandleFunc("/evil-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such page here", http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func configured(t *testing.T, cfg string) tools.Provider {
	t.Helper()
	c := plugin.InProcess(t, &httpPlugin{cfg: defaultConfig()})
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	return c.Tools()
}

func callFetch(t *testing.T, p tools.Provider, args string) *tools.CallResult {
	t.Helper()
	res, err := p.CallTool(context.Background(), &tools.CallRequest{Name: "fetch_url", Arguments: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("fetch_url(%s): transport error %v; failures must be IsError results", args, err)
	}
	return res
}

func TestFetch(t *testing.T) {
	t.Parallel()
	srv := site(t)
	p := configured(t, `{"max_bytes":2048,"max_length":1000,"user_agent":"test-agent"}`)
	for _, tc := range []struct {
		name, args string
		isErr      bool
		want       []string
		not        []string
	}{
		{"html to text", `{"url":"` + srv.URL + `/page"}`, false,
			[]string{"Title: Hello page", "## Welcome", "UA=test-agent", "[next](" + srv.URL + "/next)", "Status: 200 OK"},
			[]string{"<p>", "var x"}},
		{"raw html", `{"url":"` + srv.URL + `/page","raw":true}`, false, []string{"<h2>Welcome</h2>"}, nil},
		{"json as is", `{"url":"` + srv.URL + `/json"}`, false, []string{`{"a":[1,2,3]}`, "Content-Type: application/json"}, nil},
		{"charset decoded", `{"url":"` + srv.URL + `/latin1"}`, false, []string{"café crème"}, nil},
		{"redirect followed", `{"url":"` + srv.URL + `/redirect"}`, false, []string{"URL: " + srv.URL + "/json", `"a"`}, nil},
		{"binary described", `{"url":"` + srv.URL + `/binary"}`, false, []string{"application/octet-stream is binary content (4 bytes"}, nil},
		{"max_bytes cut", `{"url":"` + srv.URL + `/big","max_length":5000}`, false, []string{"cut at max_bytes (2048 bytes)"}, []string{strings.Repeat("0123456789", 205)}},
		{"paged", `{"url":"` + srv.URL + `/big","start_index":10,"max_length":15}`, false, []string{"\n\n012345678901234\n\n[text continues: call fetch_url again with start_index=25]"}, nil},
		{"404 is a tool error", `{"url":"` + srv.URL + `/missing"}`, true, []string{"404 Not Found", "no such page here"}, nil},
		{"non-http scheme", `{"url":"file:///etc/passwd"}`, true, []string{"not an absolute http or https URL"}, nil},
		{"redirect to file refused", `{"url":"` + srv.URL + `/evil-redirect"}`, true, []string{"only http and https"}, []string{"root:"}},
		{"unreachable", `{"url":"http://127.0.0.1:1/"}`, true, []string{"fetching http://127.0.0.1:1/"}, nil},
		{"unknown argument", `{"url":"` + srv.URL + `/json","method":"POST"}`, true, []string{"unknown field"}, nil},
	} {
		res := callFetch(t, p, tc.args)
		text := res.Content[0].Text
		if res.IsError != tc.isErr {
			t.Errorf("%s: IsError=%v, want %v: %s", tc.name, res.IsError, tc.isErr, text)
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: result lacks %q:\n%s", tc.name, w, text)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(text, n) {
				t.Errorf("%s: result should not contain %q:\n%s", tc.name, n, text)
			}
		}
	}

	res := callFetch(t, p, `{"url":"`+srv.URL+`/image"}`)
	if len(res.Content) != 2 || res.Content[1].Image == nil || res.Content[1].Image.MIMEType != "image/png" {
		t.Fatalf("image: %+v", res.Content)
	}
	if _, err := png.Decode(bytes.NewReader(res.Content[1].Image.Data)); err != nil {
		t.Errorf("image data does not decode: %v", err)
	}
	_, err := p.CallTool(context.Background(), &tools.CallRequest{Name: "fetch"})
	if status.CodeOf(err) != status.NotFound {
		t.Errorf("unknown tool: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, path string }{
		{`{"max_bytes":10}`, "max_bytes"},
		{`{"max_length":5}`, "max_length"},
		{`{"timeout":0}`, "timeout"},
	} {
		ds := (&httpPlugin{}).ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: diags %+v, want one at %s", tc.raw, ds, tc.path)
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := site(t)
	sdktest.Common(t, &httpPlugin{cfg: defaultConfig()})
	sdktest.Tools(t, &httpPlugin{cfg: defaultConfig()}, sdktest.WithToolSample("fetch_url", `{"url":"`+srv.URL+`/page"}`))
}
